import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  chatPageSchema,
  chatSchema,
  chatWithMembersSchema,
  historyPageSchema,
  messageSchema,
  presenceSchema,
} from '../../domain/response-schemas.js';
import { emojiSchema, idSchema, type Schemas, userIdSchema } from '../../domain/schemas.js';
import { asUser, bodyErrors, errors, json, userErrors } from './responses.js';

/** The routes of chatRoutes, receiptRoutes and presenceRoutes, all behind a user token. */
export function registerChatPaths(registry: OpenAPIRegistry, schemas: Schemas): void {
  const body = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema } } });
  const inChat = z.object({ chatId: idSchema.meta({ description: 'the chat' }) });
  const member = { forbidden: 'the caller is not a member of the chat', not_found: 'no such chat' };
  const path = (config: Parameters<OpenAPIRegistry['registerPath']>[0]) =>
    registry.registerPath({ security: asUser, tags: ['chats'], ...config });

  path({
    method: 'post',
    path: '/api/chats',
    summary: 'Create a chat',
    description: 'The creator is added to `memberIds`. Limited per user (CHATS_CREATED_PER_MIN).',
    request: { body: body(schemas.createChatBody) },
    responses: {
      201: json('The new chat', z.object({ chat: chatSchema })),
      ...errors({
        ...userErrors,
        ...bodyErrors,
        not_found: 'a member id names no user',
        conflict: 'a member is in CHATS_PER_USER_MAX chats already',
        rate_limited: 'too many chats created',
      }),
    },
  });

  path({
    method: 'get',
    path: '/api/chats',
    summary: "The caller's chats",
    description:
      "Most recent activity first, a page at a time: pass the answer's `nextCursor` as `cursor` for the next.",
    request: { query: schemas.listChatsQuery },
    responses: {
      200: json('A page of chats', chatPageSchema),
      ...errors({ ...userErrors, validation_failed: 'a bad limit, or a cursor this server did not issue' }),
    },
  });

  path({
    method: 'get',
    path: '/api/chats/{chatId}',
    summary: 'A chat and its members',
    request: { params: inChat },
    responses: {
      200: json('The chat', z.object({ chat: chatWithMembersSchema })),
      ...errors({ ...userErrors, validation_failed: 'chatId is not a UUID', ...member }),
    },
  });

  path({
    method: 'post',
    path: '/api/chats/{chatId}/members',
    summary: 'Add a member',
    description: 'Any member may add. Limited per user (MEMBER_ADDS_PER_MIN).',
    request: { params: inChat, body: body(schemas.addMemberBody) },
    responses: {
      201: json('Added', z.object({ chatId: z.string(), userId: z.string() })),
      ...errors({
        ...userErrors,
        ...bodyErrors,
        ...member,
        not_found: 'no such chat or user',
        conflict: 'already a member, the chat is full (CHAT_MAX_MEMBERS), or the user is in CHATS_PER_USER_MAX chats',
        rate_limited: 'too many members added',
      }),
    },
  });

  path({
    method: 'delete',
    path: '/api/chats/{chatId}/members/{userId}',
    summary: 'Remove a member, or leave',
    description: 'Any member may remove themselves; only the creator may remove others.',
    request: { params: inChat.extend({ userId: userIdSchema.meta({ description: 'the member to remove' }) }) },
    responses: {
      204: { description: 'Removed' },
      ...errors({
        ...userErrors,
        validation_failed: 'chatId is not a UUID, or userId not a user id',
        forbidden: 'not the creator',
        not_found: 'no such chat, or not a member',
      }),
    },
  });

  path({
    method: 'post',
    path: '/api/chats/{chatId}/messages',
    summary: 'Send a message',
    description:
      'The same path as the WebSocket `send`. With `clientMsgId`, a repeat (over HTTP or WebSocket, on any node) answers the original message and stores nothing new. `replyTo` is the seq of a message of the same chat (else validation_failed). Limited per user (SEND_RATE_PER_S, SEND_RATE_BURST).',
    request: { params: inChat, body: body(schemas.sendBody) },
    responses: {
      201: json('Accepted: it will not be lost', z.object({ message: messageSchema })),
      ...errors({
        ...userErrors,
        ...bodyErrors,
        ...member,
        rate_limited: 'too many messages',
        unavailable: 'not accepted, or not known to be: retry with the same clientMsgId',
      }),
    },
  });

  const ofMessage = inChat.extend({ seq: schemas.seqParam.meta({ description: "the message's seq" }) });
  const ofReaction = ofMessage.extend({
    emoji: emojiSchema.meta({ description: 'the reaction (URL-encoded), 1 to 32 characters' }),
  });
  const change = {
    ...userErrors,
    forbidden: 'not a member, or not allowed this change (only the sender edits; the sender or the creator deletes)',
    not_found: 'no such chat or message',
    conflict: 'the message is deleted (a tombstone cannot be edited or reacted to)',
    rate_limited: 'too many messages and changes',
    unavailable: 'not accepted, or not known to be: retry (with the same clientMsgId)',
  };

  path({
    method: 'patch',
    path: '/api/chats/{chatId}/messages/{seq}',
    summary: 'Edit a message',
    description:
      "The sender only. The same path as the WebSocket `edit`: the body is replaced, `editedAt` set, the message takes the chat's next `rev`, and every member gets `message.updated`. Acked once it will not be lost, like a send; idempotent with `clientMsgId`.",
    request: { params: ofMessage, body: body(schemas.editBody) },
    responses: {
      200: json('Accepted: the message as it is now', z.object({ message: messageSchema })),
      ...errors({ ...change, ...bodyErrors }),
    },
  });

  path({
    method: 'delete',
    path: '/api/chats/{chatId}/messages/{seq}',
    summary: 'Delete a message',
    description:
      'The sender, or the chat\'s creator. The message becomes a tombstone (body "", `deletedAt` set, reactions emptied) and keeps its seq; every member gets `message.updated`. Deleting a tombstone again changes nothing.',
    request: { params: ofMessage },
    responses: { 204: { description: 'Accepted' }, ...errors(change) },
  });

  path({
    method: 'put',
    path: '/api/chats/{chatId}/messages/{seq}/reactions/{emoji}',
    summary: 'React to a message',
    description: 'Any member; one reaction per user and emoji (idempotent). Every member gets `message.updated`.',
    request: { params: ofReaction },
    responses: { 204: { description: 'Accepted' }, ...errors(change) },
  });

  path({
    method: 'delete',
    path: '/api/chats/{chatId}/messages/{seq}/reactions/{emoji}',
    summary: 'Take a reaction back',
    description: 'Idempotent: removing a reaction that is not there changes nothing.',
    request: { params: ofReaction },
    responses: { 204: { description: 'Accepted' }, ...errors(change) },
  });

  path({
    method: 'get',
    path: '/api/chats/{chatId}/messages',
    summary: 'History',
    description: 'Messages before or after a seq (never both), in ascending seq order; the newest page without either.',
    request: { params: inChat, query: schemas.historyQuery },
    responses: {
      200: json('A page of messages', historyPageSchema),
      ...errors({ ...userErrors, validation_failed: 'a bad seq or limit, or both before and after', ...member }),
    },
  });

  path({
    method: 'post',
    path: '/api/chats/{chatId}/read',
    summary: 'Mark read up to a seq',
    description:
      'The HTTP twin of the `read` frame: the other members get a `read` frame. A position only moves forward.',
    request: { params: inChat, body: body(schemas.readBody) },
    responses: { 204: { description: 'Stored' }, ...errors({ ...userErrors, ...bodyErrors, ...member }) },
  });

  path({
    method: 'get',
    path: '/api/users/{userId}/presence',
    tags: ['presence'],
    summary: "A user's presence",
    description: 'Your own, or that of a user who shares a chat with you.',
    request: { params: z.object({ userId: userIdSchema.meta({ description: 'the user' }) }) },
    responses: {
      200: json('Online or offline, and when last seen (null if never)', presenceSchema),
      ...errors({
        ...userErrors,
        validation_failed: 'userId is not a user id (1-255 printable characters without /)',
        forbidden: 'you share no chat with this user',
        not_found: 'no such user',
      }),
    },
  });
}
