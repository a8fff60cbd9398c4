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
  .object({ type: z.literal('ack'), clientMsgId: z.string(), message: messageSchema })
  .meta({ id: 'AckFrame', description: 'your `send` was accepted: it will not be lost' });

export const errorFrame = z
  .object({
    type: z.literal('error'),
    code: errorCodeSchema,
    message: z.string(),
    clientMsgId: z.string().optional().meta({ description: 'the refused send' }),
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
  .object({ type: z.literal('synced') })
  .meta({ id: 'SyncedFrame', description: 'every message a `sync` asked for has been sent' });

export const serverFrame = z
  .discriminatedUnion('type', [
    readyFrame,
    messageFrame,
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
