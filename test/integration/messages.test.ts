import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, messageWithId } from '../helpers/ws-client.js';

const LIST_MAX = 10;
describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let app: InProcess;
  let alice: TestUser, bob: TestUser;

  beforeAll(async () => {
    env = await createTestEnv({ ACTIVE_LIST_MAX: String(LIST_MAX) }, { redis: kind });
    app = await startInProcess(env);
    [alice, bob] = await Promise.all([app.api.newUser('alice'), app.api.newUser('bob')]);
  });
  afterAll(async () => {
    await app?.stop();
    await env?.cleanup();
  });

  const pgCount = async (chatId: string) =>
    (await env.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE chat_id = $1', [chatId]))
      .rows[0]!.n;

  describe('send', () => {
    it('acks a WS send and delivers it to every connection of every member, the sender included', async () => {
      const chat = await app.api.newChat(alice, [bob]);
      const [a1, a2, b1] = await Promise.all([
        connectClient(app.url, alice.token),
        connectClient(app.url, alice.token),
        connectClient(app.url, bob.token),
      ]);
      a1.send({ type: 'send', chatId: chat.id, body: 'hello', clientMsgId: 'c-1' });
      const ack = await a1.next((f) => f.type === 'ack', 'ack');
      const message = ack.message as { id: string; seq: number; senderId: string; body: string; chatId: string };
      expect(ack.clientMsgId).toBe('c-1');
      expect(message).toMatchObject({
        seq: 1,
        senderId: alice.user.id,
        body: 'hello',
        chatId: chat.id,
        clientMsgId: 'c-1',
      });
      for (const s of [a1, a2, b1]) {
        const f = await s.next(messageWithId(message.id), 'message');
        expect(f.message).toEqual(message);
      }
      await waitFor(async () => (await pgCount(chat.id)) === 1, 'the message in PostgreSQL');
      await Promise.all([a1.close(), a2.close(), b1.close()]);
    });

    it('is idempotent on clientMsgId: WS then HTTP from another connection return one message, stored and delivered once', async () => {
      const chat = await app.api.newChat(alice, [bob]);
      const [ws, watcher] = await Promise.all([connectClient(app.url, alice.token), connectClient(app.url, bob.token)]);
      ws.send({ type: 'send', chatId: chat.id, body: 'once', clientMsgId: 'dup-1' });
      const ack = await ws.next((f) => f.type === 'ack', 'ack');
      const again = await app.api.send(alice.token, chat.id, 'once (retried)', 'dup-1');
      expect(again.status).toBe(201);
      expect(again.body.message).toEqual(ack.message);
      const wsAgain = ws.frames.length;
      ws.send({ type: 'send', chatId: chat.id, body: 'once', clientMsgId: 'dup-1' });
      const ack2 = await ws.next((f) => f.type === 'ack', 'second ack', wsAgain);
      expect(ack2.message).toEqual(ack.message);

      // A later marker message: once it has arrived, any duplicate delivery would have too.
      const marker = await app.api.send(alice.token, chat.id, 'marker', 'dup-2');
      await watcher.next(messageWithId(marker.body.message.id), 'marker');
      const delivered = watcher.of('message').map((f) => (f.message as { seq: number }).seq);
      expect(delivered).toEqual([1, 2]);
      await waitFor(async () => (await pgCount(chat.id)) === 2, 'two rows in PostgreSQL');
      const { rows } = await env.pool.query('SELECT seq, client_msg_id FROM messages WHERE chat_id = $1 ORDER BY seq', [
        chat.id,
      ]);
      expect(rows).toEqual([
        { seq: 1, client_msg_id: 'dup-1' },
        { seq: 2, client_msg_id: 'dup-2' },
      ]);
      await Promise.all([ws.close(), watcher.close()]);
    });

    it('keeps only the seq under the idempotency key, and answers a retry from PostgreSQL once the original left Redis', async () => {
      const chat = await app.api.newChat(alice, [bob]);
      const first = await app.api.send(alice.token, chat.id, 'the original', 'keep-1');
      const idemKey = createKeys(env.config.REDIS_KEY_PREFIX).idempotency(chat.id, alice.user.id, 'keep-1');
      expect(await env.redis.get(idemKey)).toBe('1');
      // Push the original out of the active list: past ACTIVE_LIST_MAX, persisted messages are trimmed.
      for (let i = 0; i < LIST_MAX + 5; i++) await app.api.send(alice.token, chat.id, `filler ${i}`, `keep-f${i}`);
      const active = createKeys(env.config.REDIS_KEY_PREFIX).active(chat.id);
      await waitFor(
        async () => JSON.parse((await env.redis.lindex(active, 0)) ?? '{"seq":0}').seq > 1,
        'the original trimmed from Redis',
      );
      const again = await app.api.send(alice.token, chat.id, 'the original (retried)', 'keep-1');
      expect(again.status).toBe(201);
      expect(again.body.message).toEqual(first.body.message);
      await waitFor(async () => (await pgCount(chat.id)) === LIST_MAX + 6, 'every message stored once');
      expect(
        (await app.api.history(alice.token, chat.id, 'limit=200')).body.messages.filter((m) =>
          m.body.startsWith('the original'),
        ),
      ).toHaveLength(1);
    });

    it('answers a refused WS send with an error carrying its clientMsgId and stores nothing', async () => {
      const outsider = await app.api.newUser('outsider');
      const chat = await app.api.newChat(alice, [bob]);
      const s = await connectClient(app.url, outsider.token);
      s.send({ type: 'send', chatId: chat.id, body: 'let me in', clientMsgId: 'x-1' });
      const err = await s.next((f) => f.type === 'error', 'error');
      expect(err).toMatchObject({ code: 'forbidden', clientMsgId: 'x-1' });
      expect(await pgCount(chat.id)).toBe(0);
      await s.close();
    });
  });

  describe('history across the Redis/PostgreSQL boundary', () => {
    const TOTAL = 35;
    let chatId: string;

    beforeAll(async () => {
      chatId = (await app.api.newChat(alice, [bob])).id;
      for (let i = 1; i <= TOTAL; i++) {
        const r = await app.api.send(i % 2 ? alice.token : bob.token, chatId, `m${i}`, `h-${i}`);
        expect(r.body.message.seq).toBe(i);
      }
      // Persisted and trimmed: the list keeps only the newest LIST_MAX; older ones are in PostgreSQL only.
      await waitFor(async () => (await pgCount(chatId)) === TOTAL, 'all persisted');
      await waitFor(
        async () =>
          (await env.redis.llen(`${env.config.REDIS_KEY_PREFIX}chat:{${chatId}}:messages:active`)) === LIST_MAX,
        'list trimmed',
      );
    });

    it('pages backwards from the newest to the first with exact hasMore', async () => {
      const seen: number[] = [];
      let query = 'limit=7';
      for (let page = 0; page < 10; page++) {
        const r = await app.api.history(bob.token, chatId, query);
        expect(r.status).toBe(200);
        const seqs = r.body.messages.map((m) => m.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        seen.unshift(...seqs);
        if (!r.body.hasMore) break;
        query = `before=${seqs[0]}&limit=7`;
      }
      expect(seen).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    });

    it('pages forwards from the start to the newest with exact hasMore', async () => {
      const seen: number[] = [];
      let after = 0;
      for (let page = 0; page < 10; page++) {
        const r = await app.api.history(alice.token, chatId, `after=${after}&limit=6`);
        const seqs = r.body.messages.map((m) => m.seq);
        seen.push(...seqs);
        if (!r.body.hasMore) break;
        after = seqs.at(-1)!;
      }
      expect(seen).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    });

    it('answers pages that straddle the boundary, and hasMore is exact at both ends', async () => {
      const straddle = await app.api.history(alice.token, chatId, 'before=30&limit=10');
      expect(straddle.body.messages.map((m) => m.seq)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
      expect(straddle.body.hasMore).toBe(true);
      const first = await app.api.history(alice.token, chatId, 'before=11&limit=10');
      expect(first.body.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(first.body.hasMore).toBe(false);
      const last = await app.api.history(alice.token, chatId, 'after=25&limit=10');
      expect(last.body.messages.map((m) => m.seq)).toEqual([26, 27, 28, 29, 30, 31, 32, 33, 34, 35]);
      expect(last.body.hasMore).toBe(false);
      const almost = await app.api.history(alice.token, chatId, 'after=24&limit=10');
      expect(almost.body.hasMore).toBe(true);
      const beyond = await app.api.history(alice.token, chatId, 'after=35');
      expect(beyond.body).toEqual({ messages: [], hasMore: false });
      const latest = await app.api.history(alice.token, chatId, 'limit=3');
      expect(latest.body.messages.map((m) => m.body)).toEqual(['m33', 'm34', 'm35']);
    });

    it('refuses history to non-members', async () => {
      const outsider = await app.api.newUser('nosy');
      const r = await app.api.history(outsider.token, chatId);
      expect(r.status).toBe(403);
      expect(JSON.stringify(r.body)).not.toContain('m1');
    });
  });

  describe('sync', () => {
    it('replays exactly the messages a client missed while disconnected, in order, then synced', async () => {
      const chat = await app.api.newChat(alice, [bob]);
      const b = await connectClient(app.url, bob.token);
      await app.api.send(alice.token, chat.id, 'seen', 's-0');
      const seen = await b.next((f) => f.type === 'message', 'first message');
      const lastSeen = (seen.message as { seq: number }).seq;
      await b.close();

      const missed: string[] = [];
      for (let i = 1; i <= 30; i++)
        missed.push((await app.api.send(alice.token, chat.id, `missed ${i}`, `s-${i}`)).body.message.id);

      const again = await connectClient(app.url, bob.token);
      const from = again.frames.length;
      again.send({ type: 'sync', chats: { [chat.id]: lastSeen } });
      await again.next((f) => f.type === 'synced', 'synced', from);
      const replayed = again.frames
        .slice(from)
        .filter((f) => f.type === 'message')
        .map((f) => f.message as { id: string; seq: number });
      expect(replayed.map((m) => m.id)).toEqual(missed);
      expect(replayed.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => lastSeen + 1 + i));
      await again.close();
    });
  });
});
