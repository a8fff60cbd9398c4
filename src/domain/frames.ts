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

/**
 * `messageJson` is the message's JSON as the wire shows it (message-log wireJson: the stored
 * bytes, reused as they are unless an emoji has more reactors than the wire shows). `state` is
 * always "accepted": in Redis with its way to PostgreSQL (docs/protocol.md "Durability").
 */
export const ackFrame = (clientMsgId: string | null, messageJson: string): string =>
  `{"type":"ack","clientMsgId":${JSON.stringify(clientMsgId)},"message":${messageJson},"state":"accepted"}`;

/** Live delivery and `sync` replay alike; `messageJson` as for ackFrame. */
export const messageFrame = (messageJson: string): string => `{"type":"message","message":${messageJson}}`;

/** A message changed (edited, deleted, reacted to): the whole message, with its new rev. */
export const messageUpdatedFrame = (messageJson: string): string =>
  `{"type":"message.updated","message":${messageJson}}`;

/** PostgreSQL holds every message of the chat up to `seq`. */
export const persistedFrame = (chatId: string, seq: number): string =>
  `{"type":"persisted","chatId":${JSON.stringify(chatId)},"seq":${seq}}`;

/** A `sync` is done; `revs` holds each synced chat's rev. */
export const syncedFrame = (revs: Record<string, number>): string => JSON.stringify({ type: 'synced', revs });

/** The chat id is a validated UUID; a user id is opaque (a JWT's sub may hold `"` or `\`), so it is encoded. */
export const typingFrame = (chatId: string, userId: string): string =>
  `{"type":"typing","chatId":"${chatId}","userId":${JSON.stringify(userId)}}`;

export const presenceFrame = (change: PresenceChange): string =>
  JSON.stringify({ type: 'presence', userId: change.userId, status: change.status, lastSeenAt: change.lastSeenAt });

export const systemFrame = (e: SystemEvent): string =>
  JSON.stringify({ type: 'system', event: e.event, data: e.data ?? null });
