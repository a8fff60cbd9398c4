import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Read receipts and unreadCount against the real api and workers (in this process), real Redis
 * and PostgreSQL. No ADMIN_TOKEN is configured here, so the admin route must refuse with 403.
 */
describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let app: InProcess;
  let a: TestUser, b: TestUser, c: TestUser, outsider: TestUser;

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
    app = await startInProcess(env);
    [a, b, c, outsider] = await Promise.all([
      app.api.newUser('a'),
      app.api.newUser('b'),
      app.api.newUser('c'),
      app.api.newUser('o'),
    ]);
  });
  afterAll(async () => {
    await app?.stop();
    await env?.cleanup();
  });

  const readFrames = (s: TestSocket, chatId: string, userId: string) =>
    s.frames.filter((f) => f.type === 'read' && f.chatId === chatId && f.userId === userId);

  async function unread(user: TestUser, chatId: string, via = app): Promise<number> {
    const r = await via.api.request('GET', '/api/chats', undefined, user.token);
    expect(r.status).toBe(200);
    return r.body.chats.find((x: { id: string }) => x.id === chatId).unreadCount;
  }

  async function sendAll(user: TestUser, chatId: string, n: number): Promise<number> {
    let seq = 0;
    for (let i = 0; i < n; i++) {
      const r = await app.api.send(user.token, chatId, `${user.user.username} ${i}`);
      expect(r.status).toBe(201);
      seq = r.body.message.seq;
    }
    return seq;
  }

  const storedRead = async (chatId: string, userId: string): Promise<number> => {
    const { rows } = await env.pool.query(
      'SELECT last_read_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2',
      [chatId, userId],
    );
    return Number(rows[0].last_read_seq);
  };

  describe('read receipts', () => {
    it('move only forward, are clamped to the last seq, and reach the other members only', async () => {
      const chat = await app.api.newChat(a, [b]);
      await sendAll(a, chat.id, 5);
      const as = await connectClient(app.url, a.token);
      const bs = await connectClient(app.url, b.token);

      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 3 }, b.token)).status).toBe(204);
      await as.next((f) => f.type === 'read' && f.userId === b.user.id, 'read 3');
      // Backwards, over HTTP and WS, then the same seq again: nothing moves, nobody is told.
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 1 }, b.token)).status).toBe(204);
      bs.send({ type: 'read', chatId: chat.id, seq: 2 });
      bs.send({ type: 'read', chatId: chat.id, seq: 3 });
      // Past the end: clamped to the chat's last seq (5).
      bs.send({ type: 'read', chatId: chat.id, seq: 999 });
      await as.next((f) => f.type === 'read' && f.userId === b.user.id && f.seq === 5, 'read clamped to 5');
      expect(readFrames(as, chat.id, b.user.id).map((f) => f.seq)).toEqual([3, 5]);
      expect(readFrames(as, chat.id, b.user.id)[0]).toEqual({
        type: 'read',
        chatId: chat.id,
        userId: b.user.id,
        seq: 3,
      });
      // The reader's own connection is not told of its own read (the marker: a message after it).
      const marker = await app.api.send(a.token, chat.id, 'marker');
      await bs.next(messageWithId(marker.body.message.id), 'marker');
      expect(bs.of('read')).toEqual([]);
      expect(bs.of('error')).toEqual([]);

      await waitFor(async () => (await storedRead(chat.id, b.user.id)) === 5, 'read position 5 in PostgreSQL');
      bs.send({ type: 'read', chatId: chat.id, seq: 4 });
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 2 }, b.token)).status).toBe(204);
      expect(await unread(b, chat.id)).toBe(1); // a's marker (seq 6)
      expect(await storedRead(chat.id, b.user.id)).toBe(5);
      await Promise.all([as.close(), bs.close()]);
    });

    it('does not move back when Redis forgot the position (PostgreSQL is the floor)', async () => {
      const chat = await app.api.newChat(a, [b]);
      await sendAll(a, chat.id, 4);
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 4 }, b.token)).status).toBe(204);
      await waitFor(async () => (await storedRead(chat.id, b.user.id)) === 4, 'read position 4 in PostgreSQL');
      // As if the hash had expired: the next read must not take 2 as the new position.
      await env.redis.del(`${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:reads`);
      const as = await connectClient(app.url, a.token);
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 2 }, b.token)).status).toBe(204);
      expect(await unread(b, chat.id)).toBe(0);
      const last = await app.api.send(a.token, chat.id, 'marker');
      await as.next(messageWithId(last.body.message.id), 'marker');
      expect(readFrames(as, chat.id, b.user.id)).toEqual([]);
      await as.close();
    });

    it('refuses outsiders, unknown chats and bad seqs with the contract codes', async () => {
      const chat = await app.api.newChat(a, [b]);
      const forbidden = await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 1 }, outsider.token);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error.code).toBe('forbidden');
      const missing = await app.api.request(
        'POST',
        `/api/chats/9f1d2c3b-0000-4000-8000-000000000000/read`,
        { seq: 1 },
        a.token,
      );
      expect(missing.status).toBe(404);
      for (const body of [{ seq: -1 }, { seq: 1.5 }, { seq: '3' }, {}]) {
        const bad = await app.api.request('POST', `/api/chats/${chat.id}/read`, body, a.token);
        expect(bad.status).toBe(400);
        expect(bad.body.error.code).toBe('validation_failed');
      }
      const os = await connectClient(app.url, outsider.token);
      os.send({ type: 'read', chatId: chat.id, seq: 1 });
      expect((await os.next((f) => f.type === 'error', 'error frame')).code).toBe('forbidden');
      await os.close();
    });
  });

  describe('unreadCount', () => {
    it('is right right after interleaved sends and reads from several members, and counts only others', async () => {
      const chat = await app.api.newChat(a, [b, c]);
      const expectUnread = async (want: [number, number, number]) =>
        expect(await Promise.all([unread(a, chat.id), unread(b, chat.id), unread(c, chat.id)])).toEqual(want);

      await expectUnread([0, 0, 0]);
      await sendAll(a, chat.id, 3); // 1-3 by a
      await expectUnread([0, 3, 3]);
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 2 }, b.token)).status).toBe(204);
      await expectUnread([0, 1, 3]);
      await sendAll(b, chat.id, 2); // 4-5 by b: b has now read up to 5
      await expectUnread([2, 0, 5]);
      await sendAll(c, chat.id, 1); // 6 by c
      await expectUnread([3, 1, 0]);
      const cs = await connectClient(app.url, c.token);
      cs.send({ type: 'read', chatId: chat.id, seq: 6 });
      cs.send({ type: 'send', chatId: chat.id, body: 'over ws', clientMsgId: 'ws-1' }); // 7 by c
      await cs.next((f) => f.type === 'ack', 'ack');
      await expectUnread([4, 2, 0]);
      expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 7 }, a.token)).status).toBe(204);
      await sendAll(a, chat.id, 1); // 8 by a
      await expectUnread([0, 3, 1]);
      await cs.close();

      // PostgreSQL alone agrees once the batches ran: read positions and own sends both moved it.
      await waitFor(
        async () =>
          (await storedRead(chat.id, a.user.id)) === 8 &&
          (await storedRead(chat.id, b.user.id)) === 5 &&
          (await storedRead(chat.id, c.user.id)) === 7,
        'positions a=8, b=5, c=7 in PostgreSQL',
      );
    });

    it('survives a restart of the api (and of Redis forgetting the live positions)', async () => {
      const chat = await app.api.newChat(a, [b, c]);
      const all = async () => [await unread(a, chat.id), await unread(b, chat.id), await unread(c, chat.id)];
      await sendAll(a, chat.id, 4); // 1-4 by a
      await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 3 }, b.token);
      await sendAll(b, chat.id, 1); // 5 by b
      await sendAll(a, chat.id, 2); // 6-7 by a
      await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 6 }, b.token);
      expect(await all()).toEqual([0, 1, 7]);
      await waitFor(
        async () => (await storedRead(chat.id, b.user.id)) === 6 && (await storedRead(chat.id, a.user.id)) === 7,
        'positions in PostgreSQL',
      );

      // The api announces its shutdown to its own clients before closing them with 1001.
      const watcher = await connectClient(app.url, a.token);
      await app.stop();
      expect(await watcher.closed).toBe(1001);
      expect(watcher.of('system')).toEqual([{ type: 'system', event: 'server.shutdown', data: { reconnect: true } }]);

      app = await startInProcess(env);
      expect(await all()).toEqual([0, 1, 7]);
      await env.redis.del(`${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:reads`);
      expect(await all()).toEqual([0, 1, 7]);
    });
  });

  describe('admin broadcast without ADMIN_TOKEN', () => {
    it('answers 403 whatever token is sent', async () => {
      for (const token of [undefined, 'anything', a.token]) {
        const r = await app.api.request('POST', '/api/admin/broadcast', { event: 'x' }, token);
        expect(r.status).toBe(403);
        expect(r.body.error.code).toBe('forbidden');
      }
    });
  });
});
