import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from './errors.js';
import type { Chat, ChatMember, Message, User } from './types.js';

/**
 * zod schemas of what the server answers: the contract's entities and error shape, for the
 * OpenAPI document, the WebSocket frames' JSON Schema and the tests that hold the server to both.
 * Nothing on the request path parses with them. Objects are plain (not strict) so that the
 * published schemas stay open to new fields; the tests compare a parse with its input to catch a
 * field the schemas do not name. The `id` in each `meta` names the component in the documents
 * (this module is evaluated once per process, and zod refuses an id registered twice).
 */

/** Ids are opaque strings to a client (the server issues UUIDs; a JWT user's id is its `sub`). */
const id = (what: string) =>
  z
    .string()
    .min(1)
    .meta({ description: `${what} (opaque)` });
const time = (what: string) => z.iso.datetime().meta({ description: `${what} (ISO-8601 UTC)` });
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const userSchema = z
  .object({
    id: id('the user id'),
    username: z.string(),
    displayName: z.string(),
    createdAt: time('when the account was created'),
  })
  .meta({ id: 'User' }) satisfies z.ZodType<User>;

export const chatSchema = z
  .object({
    id: id('the chat id'),
    title: z.string().nullable(),
    createdBy: id('the creator'),
    createdAt: time('when the chat was created'),
    lastSeq: seq.meta({ description: 'seq of the newest message (0 when none)' }),
    persistedSeq: seq.meta({
      description: 'every message up to this seq is in PostgreSQL (0 until the first is stored; never ahead of it)',
    }),
  })
  .meta({ id: 'Chat' }) satisfies z.ZodType<Chat>;

export const chatMemberSchema = z
  .object({
    userId: id('the member'),
    username: z.string(),
    displayName: z.string(),
    joinedAt: time('when they joined'),
    lastReadSeq: seq.meta({ description: 'the newest seq they marked read' }),
  })
  .meta({ id: 'ChatMember' }) satisfies z.ZodType<ChatMember>;

export const messageSchema = z
  .object({
    id: id('the message id'),
    chatId: id('its chat'),
    seq: seq.min(1).meta({ description: 'its place in the chat: 1, 2, 3... with no two alike' }),
    senderId: id('who sent it'),
    body: z.string(),
    clientMsgId: z.string().nullable().meta({ description: 'the idempotency key it was sent with' }),
    createdAt: time('when it was accepted'),
    replyTo: seq.min(1).nullable().meta({ description: 'the seq of the message of the same chat this one replies to' }),
    editedAt: time('when its body was last edited').nullable(),
    deletedAt: time('when it was deleted (a tombstone: body "" and no reactions)').nullable(),
    reactions: z
      .array(
        z.object({
          emoji: z.string().min(1).max(32),
          count: z.number().int().min(1),
          userIds: z.array(z.string()).max(20).meta({ description: 'the first 20 who reacted' }),
        }),
      )
      .meta({ description: 'ordered by first use of each emoji' }),
    rev: z.number().int().min(0).meta({ description: "the chat's revision at this message's last change" }),
  })
  .meta({ id: 'Message' }) satisfies z.ZodType<Message>;

export const chatWithMembersSchema = chatSchema
  .extend({ members: z.array(chatMemberSchema) })
  .meta({ id: 'ChatWithMembers' });

export const chatSummarySchema = chatSchema
  .extend({
    lastMessage: messageSchema.nullable(),
    unreadCount: z.number().int().min(0).meta({ description: "messages after the caller's read position" }),
  })
  .meta({ id: 'ChatSummary' });

export const chatPageSchema = z.object({
  chats: z.array(chatSummarySchema).meta({ description: 'most recent activity first' }),
  nextCursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last page' }),
});

export const historyPageSchema = z.object({
  messages: z.array(messageSchema).meta({ description: 'ascending seq' }),
  hasMore: z.boolean(),
});

export const presenceSchema = z
  .object({
    userId: id('the user'),
    status: z.enum(['online', 'offline']),
    lastSeenAt: time('when they were last connected').nullable(),
  })
  .meta({ id: 'Presence' });

export const errorCodeSchema = z
  .enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]])
  .meta({ id: 'ErrorCode', description: 'stable, lower_snake_case; `internal` is a server bug' });

/** The fields an error may carry beside its code and message (AppError details). */
const errorDetails = {
  clientMsgId: z.string().optional().meta({ description: 'the refused send or frame' }),
  retryAfterMs: z
    .number()
    .int()
    .min(0)
    .optional()
    .meta({ description: 'rate_limited (and busy logins): when to try again' }),
};

export const errorSchema = z
  .object({
    code: errorCodeSchema,
    message: z.string().meta({ description: 'for people, not for matching' }),
    ...errorDetails,
  })
  .meta({ id: 'Error' });

/** Every HTTP error answer: `{"error": {code, message}}`. */
export const errorBodySchema = z.object({ error: errorSchema }).meta({ id: 'ErrorBody' });
