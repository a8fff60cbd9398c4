import type { AppError } from './errors.js';
import type { PresenceChange, SystemEvent } from './events.js';

/**
 * The server → client frames built on the hot path, as strings, each in one place (their schemas,
 * for the published JSON Schema and the conformance test, are in server-frames.ts). Every builder
 * puts `type` first: the backpressure check reads it from the string.
 */

/** `context` names what was refused: the send's clientMsgId, the chat of a failed sync. */
export const errorFrame = (err: AppError, context?: { clientMsgId?: string | null; chatId?: string }): string =>
  JSON.stringify({
    type: 'error',
    ...err.details,
    code: err.code,
    message: err.message,
    ...(context?.clientMsgId ? { clientMsgId: context.clientMsgId } : {}),
    ...(context?.chatId ? { chatId: context.chatId } : {}),
  });

/** `messageJson` is the stored JSON of the message, reused as is (never parsed and serialised again). */
export const ackFrame = (clientMsgId: string, messageJson: string): string =>
  `{"type":"ack","clientMsgId":${JSON.stringify(clientMsgId)},"message":${messageJson}}`;

/** Live delivery and `sync` replay alike; `messageJson` as for ackFrame. */
export const messageFrame = (messageJson: string): string => `{"type":"message","message":${messageJson}}`;

/** Ids are validated UUIDs, so they go into the JSON as they are. */
export const typingFrame = (chatId: string, userId: string): string =>
  `{"type":"typing","chatId":"${chatId}","userId":"${userId}"}`;

export const presenceFrame = (change: PresenceChange): string =>
  JSON.stringify({ type: 'presence', userId: change.userId, status: change.status, lastSeenAt: change.lastSeenAt });

export const systemFrame = (e: SystemEvent): string =>
  JSON.stringify({ type: 'system', event: e.event, data: e.data ?? null });
