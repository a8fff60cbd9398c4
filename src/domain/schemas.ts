import { z } from 'zod';
import { decodeChatCursor } from './chat-cursor.js';

/**
 * zod schemas of everything a client sends (HTTP bodies, params, queries and WS frames).
 * Limits come from the config, so the schemas are built once per process by `createSchemas`.
 */
export interface InputLimits {
  messageMaxChars: number;
  chatMaxMembers: number;
  /** Most chats one `sync` frame may name (config SYNC_MAX_CHATS; 500 when not given). */
  syncMaxChats?: number;
}

/**
 * Lower-cased: PostgreSQL compares UUIDs case-blind but Redis keys do not, so `chat:{ABC..}` and
 * `chat:{abc..}` would be two seq counters for one chat.
 */
export const idSchema = z.uuid({ message: 'must be a UUID' }).toLowerCase();

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * A user id (docs/protocol.md "External identity"): opaque, 1-255 printable characters without
 * `/` (a JWT's `sub`; Parley's own users have UUIDs). Printable means no control characters;
 * spaces are allowed (pub/sub payloads carry ids percent-encoded, src/domain/events.ts).
 */
const USER_ID_SHAPE = /^[^\p{Cc}/]{1,255}$/u;
export const isUserId = (id: string): boolean => USER_ID_SHAPE.test(id) && id.isWellFormed();
/** A UUID-shaped user id is lower-cased, as before ids were opaque (Redis keys are case-sensitive). */
export const normalizeUserId = (id: string): string => (UUID_SHAPE.test(id) ? id.toLowerCase() : id);
export const userIdSchema = z
  .string()
  .regex(USER_ID_SHAPE, 'must be 1-255 printable characters without /')
  .refine((id) => id.isWellFormed(), 'must be well-formed text')
  .transform(normalizeUserId);

/** Text that PostgreSQL and every client can store: well-formed Unicode and no NUL. */
const storableText = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => s.isWellFormed() && !s.includes('\u0000'), 'must be well-formed text without NUL');

export const clientMsgIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[\x21-\x7e]+$/, 'must be 1-64 printable ASCII characters');

export const seqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** A reaction: 1 to 32 characters (an emoji, or a short code), no control characters. */
export const emojiSchema = z
  .string()
  .min(1)
  .max(32)
  .refine((s) => !/[\p{Cc}\s]/u.test(s), 'must be 1-32 characters without spaces or control characters');

/** POST /api/admin/broadcast (the operator's, not a client's, but checked the same way). */
export const broadcastBody = z.object({
  event: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 letters, digits, _ . : or -'),
  data: z.unknown().optional(),
});

export function createSchemas(limits: InputLimits) {
  const body = storableText(limits.messageMaxChars).refine((s) => s.trim().length > 0, 'must not be empty');
  const syncMaxChats = limits.syncMaxChats ?? 500;

  const registerBody = z.object({
    username: z.string().regex(/^[A-Za-z0-9_.-]{3,32}$/, 'must be 3-32 letters, digits, _ . or -'),
    password: z.string().min(8).max(200),
    displayName: storableText(64)
      .refine((s) => s.trim().length > 0, 'must not be empty')
      .optional(),
  });
  // The username reaches PostgreSQL, which refuses NUL and ill-formed text (a 500 otherwise).
  const loginBody = z.object({
    username: storableText(64).pipe(z.string().min(1)),
    password: z.string().min(1).max(200),
  });
  /** GET /api/users?username=: finding a user to add to a chat. */
  const userLookupQuery = z.object({ username: loginBody.shape.username });
  const createChatBody = z.object({
    title: storableText(200).nullish(),
    memberIds: z.array(userIdSchema).max(limits.chatMaxMembers - 1),
  });
  const addMemberBody = z.object({ userId: userIdSchema });
  const replyTo = seqSchema.min(1).nullish();
  const sendBody = z.object({ body, clientMsgId: clientMsgIdSchema.nullish(), replyTo });
  const editBody = z.object({ body, clientMsgId: clientMsgIdSchema.nullish() });
  // What a chat sequence position looks like in a path (`…/messages/:seq`).
  const seqParam = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
  const readBody = z.object({ seq: seqSchema });
  const historyQuery = z
    .object({
      before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
      after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
      limit: z.coerce.number().int().min(1).max(200).default(50),
    })
    .refine((q) => q.before === undefined || q.after === undefined, 'give before or after, not both');
  // The cursor is a previous page's nextCursor; empty (or left out) means the first page.
  const listChatsQuery = z.object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z
      .string()
      .optional()
      .transform((text, ctx) => {
        if (!text) return undefined;
        const cursor = decodeChatCursor(text);
        if (!cursor) ctx.addIssue({ code: 'custom', message: 'must be a nextCursor this server returned' });
        return cursor ?? undefined;
      }),
  });

  const frame = z.discriminatedUnion('type', [
    z.object({ type: z.literal('send'), chatId: idSchema, body, clientMsgId: clientMsgIdSchema, replyTo }),
    z.object({
      type: z.literal('edit'),
      chatId: idSchema,
      seq: seqSchema.min(1),
      body,
      clientMsgId: clientMsgIdSchema.optional(),
    }),
    z.object({
      type: z.literal('delete'),
      chatId: idSchema,
      seq: seqSchema.min(1),
      clientMsgId: clientMsgIdSchema.optional(),
    }),
    z.object({
      type: z.literal('react'),
      chatId: idSchema,
      seq: seqSchema.min(1),
      emoji: emojiSchema,
      on: z.boolean(),
      clientMsgId: clientMsgIdSchema.optional(),
    }),
    // Bounded before the record is parsed: the count is all a too-large frame costs.
    z.object({
      type: z.literal('sync'),
      chats: z
        .custom<Record<string, unknown>>(
          (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
          'must be an object',
        )
        .refine((v) => Object.keys(v).length <= syncMaxChats, `at most ${syncMaxChats} chats per sync`)
        .pipe(z.record(idSchema, z.union([seqSchema, z.object({ seq: seqSchema, rev: seqSchema })]))),
    }),
    z.object({ type: z.literal('typing'), chatId: idSchema }),
    z.object({ type: z.literal('read'), chatId: idSchema, seq: seqSchema }),
    z.object({ type: z.literal('ping'), ref: z.union([z.string().max(64), z.number()]).optional() }),
  ]);

  return {
    registerBody,
    loginBody,
    createChatBody,
    addMemberBody,
    sendBody,
    editBody,
    seqParam,
    readBody,
    historyQuery,
    listChatsQuery,
    userLookupQuery,
    frame,
  };
}

export type Schemas = ReturnType<typeof createSchemas>;
export type ClientFrame = z.infer<Schemas['frame']>;

/** The first problem of a failed parse, as one readable sentence. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid input';
  const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${path}${issue.message}`;
}
