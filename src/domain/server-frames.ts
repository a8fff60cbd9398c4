import { z } from 'zod';
import { errorCodeSchema, messageSchema, userSchema } from './response-schemas.js';

/**
 * zod schemas of every frame the server sends over the WebSocket. The hot path builds these
 * frames as strings (frames.ts; the read frame in read-advance.lua) and never parses with
 * them: they exist for the published JSON Schema (docs/ws-frames.schema.json) and for the test
 * that holds every frame a real client receives to them, so that the two cannot drift apart.
 */

const id = (what: string) =>
  z
    .string()
    .min(1)
    .meta({ description: `${what} (opaque)` });

export const readyFrame = z
  .object({ type: z.literal('ready'), user: userSchema, connectionId: id('this connection') })
  .meta({ id: 'ReadyFrame', description: 'once, right after the upgrade, before any chat event' });

export const messageFrame = z.object({ type: z.literal('message'), message: messageSchema }).meta({
  id: 'MessageFrame',
  description:
    "a message in one of your chats (yours included), on every member's connections; also what `sync` replays",
});

export const ackFrame = z
  .object({
    type: z.literal('ack'),
    clientMsgId: z
      .string()
      .nullable()
      .meta({ description: "the frame's clientMsgId (null for a change sent without one)" }),
    message: messageSchema,
    state: z.literal('accepted').meta({ description: 'in Redis with its way to PostgreSQL: it will not be lost' }),
  })
  .meta({
    id: 'AckFrame',
    description:
      'your `send` (or `edit`, `delete`, `react`) was accepted: it will not be lost; `message` is the message as it is now',
  });

export const messageUpdatedFrame = z.object({ type: z.literal('message.updated'), message: messageSchema }).meta({
  id: 'MessageUpdatedFrame',
  description:
    'a message of one of your chats was edited, deleted (a tombstone) or reacted to: the whole message with its new `rev`; in rev order per chat; also what `sync` with {seq, rev} replays',
});

export const persistedFrame = z
  .object({ type: z.literal('persisted'), chatId: id('the chat'), seq: z.number().int().min(0) })
  .meta({
    id: 'PersistedFrame',
    description: 'PostgreSQL holds every message of the chat up to `seq`; at most one per chat per write batch',
  });

export const errorFrame = z
  .object({
    type: z.literal('error'),
    code: errorCodeSchema,
    message: z.string(),
    clientMsgId: z.string().optional().meta({ description: 'the refused send or change' }),
    chatId: id('the chat a `sync` could not replay').optional(),
    retryAfterMs: z.number().int().min(0).optional().meta({ description: 'rate_limited: when to try again' }),
  })
  .meta({ id: 'ErrorFrame', description: 'a frame was refused; the connection stays open unless it is then closed' });

export const typingFrame = z
  .object({ type: z.literal('typing'), chatId: id('the chat'), userId: id('who is typing') })
  .meta({ id: 'TypingFrame', description: 'another member is typing (never stored)' });

export const readFrame = z
  .object({ type: z.literal('read'), chatId: id('the chat'), userId: id('the reader'), seq: z.number().int().min(0) })
  .meta({ id: 'ReadFrame', description: 'another member read the chat up to `seq`' });

export const presenceFrame = z
  .object({
    type: z.literal('presence'),
    userId: id('the user'),
    status: z.enum(['online', 'offline']),
    lastSeenAt: z.iso.datetime().meta({ description: 'ISO-8601 UTC' }),
  })
  .meta({ id: 'PresenceFrame', description: 'a user sharing a chat with you came online or went offline' });

export const systemFrame = z
  .object({
    type: z.literal('system'),
    event: z.string(),
    data: z.unknown().meta({ description: 'null when the event has none' }),
  })
  .meta({ id: 'SystemFrame', description: 'a system-wide event, e.g. `server.shutdown` `{reconnect: true}`' });

export const pongFrame = z
  .object({
    type: z.literal('pong'),
    ref: z.union([z.string(), z.number(), z.null()]).meta({ description: "the ping's ref, null without one" }),
  })
  .meta({ id: 'PongFrame', description: 'the answer to `ping`' });

export const syncedFrame = z
  .object({
    type: z.literal('synced'),
    revs: z
      .record(z.string(), z.number().int().min(0))
      .meta({ description: "each synced chat's rev: pass it back as `{seq, rev}` in the next sync" }),
  })
  .meta({ id: 'SyncedFrame', description: 'every message a `sync` asked for has been sent' });

export const serverFrame = z
  .discriminatedUnion('type', [
    readyFrame,
    messageFrame,
    messageUpdatedFrame,
    persistedFrame,
    ackFrame,
    errorFrame,
    typingFrame,
    readFrame,
    presenceFrame,
    systemFrame,
    pongFrame,
    syncedFrame,
  ])
  .meta({ id: 'ServerFrame', description: 'a frame the server sends' });

export type ServerFrame = z.infer<typeof serverFrame>;
