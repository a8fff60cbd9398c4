import type { Connection } from '../domain/connection.js';
import { AppError, toAppError } from '../domain/errors.js';
import { ackFrame, errorFrame, messageFrame, messageUpdatedFrame, syncedFrame } from '../domain/frames.js';
import { emojiSchema, idSchema, type Schemas, userIdSchema } from '../domain/schemas.js';
import type { MessageChange } from '../domain/types.js';
import { parse, parseQuery, readBody } from '../http/context.js';
import { encodeMessage, toWire, wireJson } from '../message-log/message-log.js';
import type { ChangeService } from '../services/change-service.js';
import type { ChatService } from '../services/chat-service.js';
import type { HistoryService } from '../services/history-service.js';
import type { MembershipService } from '../services/membership-service.js';
import type { SendService } from '../services/send-service.js';
import { syncCost } from '../ws/frame-guard.js';
import type { FrameBudget } from '../ws/frame-handler.js';
import type { Feature } from './feature.js';

export interface ChatsDeps {
  schemas: Schemas;
  chats: ChatService;
  membership: Pick<MembershipService, 'requireMember'>;
  sender: SendService;
  changer: ChangeService;
  history: HistoryService;
  /**
   * Of chat ids outside the user's chat set, which exist and whether the user is a member, in
   * one query: a `sync` naming unknown or foreign chats costs one lookup, not one per chat.
   */
  accessOf: (userId: string, chatIds: string[]) => Promise<Map<string, boolean>>;
  /** Called with the time from a `send` frame's handling to its ack written to the socket, in ms (metrics). */
  onAckWritten?: (ms: number) => void;
}

/**
 * Chats, their members and their messages: /api/chats over HTTP, and the `send`, `edit`, `delete`,
 * `react` and `sync` frames. A send, by frame or by POST, is one call of the send service
 * (services/send-service.ts), a change one of the change service (services/change-service.ts),
 * each answered with the message's JSON as stored; history and `sync` read the history service.
 */
export function chatsFeature(deps: ChatsDeps): Feature {
  const { schemas } = deps;
  const chatId = (raw: string) => parse(idSchema, raw);

  /**
   * Why the user may not sync each chat outside their set (null: they may, the set lags behind a
   * join). The set is the same one live delivery uses, so it decides for the chats in it.
   */
  async function refusals(conn: Connection, chatIds: string[]): Promise<Map<string, AppError | null>> {
    const outside = chatIds.filter((id) => !conn.chats.has(id));
    const verdicts = new Map<string, AppError | null>();
    if (outside.length === 0) return verdicts;
    let access: Map<string, boolean>;
    try {
      access = await deps.accessOf(conn.userId, outside);
    } catch (err) {
      const appErr = toAppError(err);
      for (const id of outside) verdicts.set(id, appErr);
      return verdicts;
    }
    for (const id of outside) {
      const member = access.get(id);
      if (member === undefined) verdicts.set(id, new AppError('not_found', 'no such chat'));
      else verdicts.set(id, member ? null : new AppError('forbidden', 'not a member of this chat'));
    }
    return verdicts;
  }

  /**
   * Every message after each chat's `seq`, in seq order; with `{seq, rev}` also every older message
   * changed after `rev`, in rev order, as `message.updated`; then `synced` with each chat's rev.
   */
  async function sync(
    conn: Connection,
    chats: Record<string, number | { seq: number; rev: number }>,
    budget: FrameBudget | undefined,
  ): Promise<void> {
    const entries = Object.entries(chats);
    const waitMs = budget?.charge(syncCost(entries.length)) ?? 0;
    if (waitMs > 0)
      throw new AppError('rate_limited', 'too many chats synced at once; slow down', { retryAfterMs: waitMs });
    const refused = await refusals(
      conn,
      entries.map(([id]) => id),
    );
    const revs: Record<string, number> = {};
    for (const [id, seen] of entries) {
      const refusal = refused.get(id);
      if (refusal) {
        conn.send(errorFrame(refusal, { chatId: id }));
        continue;
      }
      const lastSeq = typeof seen === 'number' ? seen : seen.seq;
      try {
        // The chat's rev before anything is replayed: a change after it reaches the socket live.
        const changed = await deps.history.changesSince(
          id,
          typeof seen === 'number' ? Number.MAX_SAFE_INTEGER : seen.rev,
          lastSeq,
        );
        let rev = changed.rev;
        for await (const page of deps.history.since(id, lastSeq)) {
          for (const m of page) {
            conn.send(messageFrame(encodeMessage(toWire(m))));
            if (m.rev > rev) rev = m.rev;
            // Keep pace with the client instead of buffering its whole history (backpressure).
            const drained = conn.drained?.();
            if (drained && !(await drained)) return;
          }
        }
        for (const m of changed.messages) conn.send(messageUpdatedFrame(encodeMessage(toWire(m))));
        revs[id] = rev;
      } catch (err) {
        conn.send(errorFrame(toAppError(err), { chatId: id }));
      }
    }
    conn.send(syncedFrame(revs));
  }

  /** An edit, delete or reaction, by frame or route: the message as it is now. */
  const change = (actorId: string, chatIdOf: string, seq: number, c: MessageChange, clientMsgId?: string | null) =>
    deps.changer.change({ chatId: chatIdOf, seq, actorId, change: c, clientMsgId });

  return {
    name: 'chats',
    routes: {
      api(api) {
        api.post('/chats', async (c) => {
          const input = await readBody(c, schemas.createChatBody);
          return c.json({ chat: await deps.chats.create(c.get('user').id, input) }, 201);
        });

        // Paged (docs/protocol.md): `?limit=1..200` (default 50) and `cursor`, a previous page's nextCursor.
        api.get('/chats', async (c) => {
          const { limit, cursor } = parseQuery(c, schemas.listChatsQuery);
          return c.json(await deps.chats.list(c.get('user').id, { limit, cursor }));
        });

        api.get('/chats/:chatId', async (c) =>
          c.json({ chat: await deps.chats.get(c.get('user').id, chatId(c.req.param('chatId'))) }),
        );

        api.post('/chats/:chatId/members', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const { userId } = await readBody(c, schemas.addMemberBody);
          await deps.chats.addMember(c.get('user').id, id, userId);
          return c.json({ chatId: id, userId }, 201);
        });

        api.delete('/chats/:chatId/members/:userId', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const userId = parse(userIdSchema, c.req.param('userId'));
          await deps.chats.removeMember(c.get('user').id, id, userId);
          return c.body(null, 204);
        });

        api.post('/chats/:chatId/messages', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const input = await readBody(c, schemas.sendBody);
          const accepted = await deps.sender.send({ chatId: id, senderId: c.get('user').id, ...input });
          return c.body(`{"message":${wireJson(accepted.json)}}`, 201, { 'content-type': 'application/json' });
        });

        api.patch('/chats/:chatId/messages/:seq', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const seq = parse(schemas.seqParam, c.req.param('seq'));
          const { body, clientMsgId } = await readBody(c, schemas.editBody);
          const done = await change(c.get('user').id, id, seq, { kind: 'edit', body }, clientMsgId);
          return c.body(`{"message":${wireJson(done.json)}}`, 200, { 'content-type': 'application/json' });
        });

        api.delete('/chats/:chatId/messages/:seq', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const seq = parse(schemas.seqParam, c.req.param('seq'));
          await change(c.get('user').id, id, seq, { kind: 'delete' });
          return c.body(null, 204);
        });

        for (const method of ['put', 'delete'] as const) {
          api[method]('/chats/:chatId/messages/:seq/reactions/:emoji', async (c) => {
            const id = chatId(c.req.param('chatId'));
            const seq = parse(schemas.seqParam, c.req.param('seq'));
            const emoji = parse(emojiSchema, c.req.param('emoji'));
            await change(c.get('user').id, id, seq, { kind: 'react', emoji, on: method === 'put' });
            return c.body(null, 204);
          });
        }

        api.get('/chats/:chatId/messages', async (c) => {
          const id = chatId(c.req.param('chatId'));
          const query = parseQuery(c, schemas.historyQuery);
          await deps.membership.requireMember(id, c.get('user').id);
          return c.json(await deps.history.page(id, query));
        });
      },
    },
    frames: {
      async send(conn, frame) {
        const started = performance.now();
        const accepted = await deps.sender.send({
          chatId: frame.chatId,
          senderId: conn.userId,
          body: frame.body,
          clientMsgId: frame.clientMsgId,
          replyTo: frame.replyTo,
        });
        conn.send(ackFrame(frame.clientMsgId, accepted.json));
        deps.onAckWritten?.(performance.now() - started);
      },
      async edit(conn, frame) {
        const done = await change(
          conn.userId,
          frame.chatId,
          frame.seq,
          { kind: 'edit', body: frame.body },
          frame.clientMsgId,
        );
        conn.send(ackFrame(frame.clientMsgId ?? null, wireJson(done.json)));
      },
      async delete(conn, frame) {
        const done = await change(conn.userId, frame.chatId, frame.seq, { kind: 'delete' }, frame.clientMsgId);
        conn.send(ackFrame(frame.clientMsgId ?? null, wireJson(done.json)));
      },
      async react(conn, frame) {
        const c = { kind: 'react' as const, emoji: frame.emoji, on: frame.on };
        const done = await change(conn.userId, frame.chatId, frame.seq, c, frame.clientMsgId);
        conn.send(ackFrame(frame.clientMsgId ?? null, wireJson(done.json)));
      },
      sync: (conn, frame, budget) => sync(conn, frame.chats, budget),
    },
  };
}
