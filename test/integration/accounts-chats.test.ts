import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MembershipChange } from '../../src/domain/events.js';
import { isCluster, type RedisClient } from '../../src/redis/client.js';
import { createKeys } from '../../src/redis/keys.js';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, upgradeStatus, messageWithId } from '../helpers/ws-client.js';

describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let app: InProcess;

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
    app = await startInProcess(env, { workers: false });
  });
  afterAll(async () => {
    await app?.stop();
    await env?.cleanup();
  });

  describe('accounts', () => {
    it('registers, logs in and answers /api/me; passwords are stored hashed', async () => {
      const reg = await app.api.request('POST', '/api/users', {
        username: 'Carol_1',
        password: 'hunter22hunter',
        displayName: 'Carol',
      });
      expect(reg.status).toBe(201);
      expect(reg.body.user).toMatchObject({ username: 'Carol_1', displayName: 'Carol' });
      expect(Object.keys(reg.body.user).sort()).toEqual(['createdAt', 'displayName', 'id', 'username']);

      const taken = await app.api.request('POST', '/api/users', { username: 'carol_1', password: 'whatever123' });
      expect(taken.status).toBe(409);
      expect(taken.body.error.code).toBe('conflict');

      const bad = await app.api.request('POST', '/api/sessions', { username: 'Carol_1', password: 'wrong-password' });
      expect(bad.status).toBe(401);
      expect(bad.body.error.code).toBe('unauthorized');

      const login = await app.api.request('POST', '/api/sessions', { username: 'Carol_1', password: 'hunter22hunter' });
      expect(login.status).toBe(200);
      expect(login.body.user.id).toBe(reg.body.user.id);
      const me = await app.api.request('GET', '/api/me', undefined, login.body.token);
      expect(me.body.user.id).toBe(reg.body.user.id);

      const { rows } = await env.pool.query('SELECT password_hash FROM users WHERE id = $1', [reg.body.user.id]);
      expect(rows[0].password_hash).toMatch(/^scrypt\$/);
      expect(rows[0].password_hash).not.toContain('hunter22hunter');
      const sessions = await env.pool.query('SELECT token_hash FROM sessions WHERE user_id = $1', [reg.body.user.id]);
      expect(sessions.rows[0].token_hash.toString('utf8')).not.toContain(login.body.token);
    });

    it('finds a user by username (case-insensitively), 404 for none, 400 without one, 401 without a token', async () => {
      const dora = await app.api.newUser('dora');
      const asker = await app.api.newUser('asker');
      const found = await app.api.request(
        'GET',
        `/api/users?username=${encodeURIComponent(dora.user.username.toUpperCase())}`,
        undefined,
        asker.token,
      );
      expect(found.status).toBe(200);
      expect(found.body.user).toEqual({
        id: dora.user.id,
        username: dora.user.username,
        displayName: expect.any(String),
        createdAt: expect.any(String),
      });
      const none = await app.api.request('GET', '/api/users?username=nobody_here', undefined, asker.token);
      expect(none.status).toBe(404);
      expect(none.body.error.code).toBe('not_found');
      expect((await app.api.request('GET', '/api/users', undefined, asker.token)).status).toBe(400);
      expect((await app.api.request('GET', `/api/users?username=${dora.user.username}`)).status).toBe(401);
    });

    it('refuses missing and unknown tokens on HTTP and on the WebSocket upgrade', async () => {
      expect((await app.api.request('GET', '/api/me')).status).toBe(401);
      expect((await app.api.request('GET', '/api/me', undefined, 'nope')).status).toBe(401);
      expect(await upgradeStatus(app.url, null)).toBe(401);
      expect(await upgradeStatus(app.url, 'not-a-token')).toBe(401);
    });

    it('accepts the token as a bearer subprotocol', async () => {
      const u = await app.api.newUser('proto');
      const s = await connectClient(app.url, u.token, { viaProtocol: true });
      expect(s.of('ready')[0]).toMatchObject({ user: { id: u.user.id } });
      expect(s.ws.protocol).toBe(`bearer.${u.token}`);
      await s.close();
    });
  });

  describe('chats and members', () => {
    let a: TestUser, b: TestUser, c: TestUser;
    beforeAll(async () => {
      [a, b, c] = await Promise.all([app.api.newUser('a'), app.api.newUser('b'), app.api.newUser('c')]);
    });

    it('creates a chat with its creator as member and lists it', async () => {
      const created = await app.api.request('POST', '/api/chats', { title: 'plans', memberIds: [b.user.id] }, a.token);
      expect(created.status).toBe(201);
      expect(created.body.chat).toMatchObject({ title: 'plans', createdBy: a.user.id, lastSeq: 0 });
      const chatId = created.body.chat.id;

      const got = await app.api.request('GET', `/api/chats/${chatId}`, undefined, b.token);
      expect(got.status).toBe(200);
      expect(got.body.chat.members.map((m: { userId: string }) => m.userId).sort()).toEqual(
        [a.user.id, b.user.id].sort(),
      );

      await app.api.send(a.token, chatId, 'first');
      const list = await app.api.request('GET', '/api/chats', undefined, b.token);
      // One page (b has one chat): `nextCursor` is null on the last page.
      expect(Object.keys(list.body).sort()).toEqual(['chats', 'nextCursor']);
      expect(list.body.nextCursor).toBeNull();
      const mine = list.body.chats.find((x: { id: string }) => x.id === chatId);
      expect(mine).toMatchObject({ lastSeq: 1, lastMessage: { body: 'first', seq: 1 } });
      expect(typeof mine.unreadCount).toBe('number');
    });

    it('rejects unknown members, non-members and unknown chats with the contract codes', async () => {
      const unknownUser = await app.api.request(
        'POST',
        '/api/chats',
        { memberIds: ['00000000-0000-4000-8000-000000000000'] },
        a.token,
      );
      expect(unknownUser.status).toBe(404);
      const chat = await app.api.newChat(a, [b]);
      const outsider = await app.api.request('GET', `/api/chats/${chat.id}`, undefined, c.token);
      expect(outsider.status).toBe(403);
      expect(outsider.body.error.code).toBe('forbidden');
      expect((await app.api.send(c.token, chat.id, 'hi')).status).toBe(403);
      const missing = await app.api.request(
        'GET',
        `/api/chats/9f1d2c3b-0000-4000-8000-000000000000`,
        undefined,
        a.token,
      );
      expect(missing.status).toBe(404);
      const badId = await app.api.request('GET', `/api/chats/not-an-id`, undefined, a.token);
      expect(badId.status).toBe(400);
      expect(badId.body.error.code).toBe('validation_failed');
    });

    it('keeps open connections in step with membership changes', async () => {
      const chat = await app.api.newChat(a, [b]);
      const cs = await connectClient(app.url, c.token);

      const added = await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: c.user.id }, a.token);
      expect(added.status).toBe(201);
      expect(
        (await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: c.user.id }, a.token)).status,
      ).toBe(409);
      // The change reaches this process's index through pub/sub; a send after it must arrive.
      await expectDelivery(cs, a, chat.id, 'after add');

      const removed = await app.api.request('DELETE', `/api/chats/${chat.id}/members/${c.user.id}`, undefined, a.token);
      expect(removed.status).toBe(204);
      expect((await app.api.send(c.token, chat.id, 'still here?')).status).toBe(403);
      await expectNoDelivery(cs, chat.id, a, b);
      await cs.close();
    });

    it("announces each change on the chat's channel and the shared one, with the chat's change counter", async () => {
      const keys = createKeys(env.config.REDIS_KEY_PREFIX);
      const chat = await app.api.newChat(a, [b]);
      const listener = listenerOn(env.redis);
      const copies: { channel: string; change: MembershipChange }[] = [];
      listener.on('message', (channel: string, payload: string) =>
        copies.push({ channel, change: JSON.parse(payload) }),
      );
      listener.on('smessage', (channel: string, payload: string) => {
        if (payload.startsWith('r ')) copies.push({ channel, change: JSON.parse(payload.slice(2)) });
      });
      try {
        await listener.subscribe(keys.channels.membership);
        await listener.ssubscribe(keys.channels.chat(chat.id));
        const added = await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: c.user.id }, a.token);
        expect(added.status).toBe(201);
        await waitFor(() => copies.length === 2, 'both copies of the addition');
        const removed = await app.api.request(
          'DELETE',
          `/api/chats/${chat.id}/members/${c.user.id}`,
          undefined,
          a.token,
        );
        expect(removed.status).toBe(204);
        await waitFor(() => copies.length === 4, 'both copies of the removal');
        const mine = copies.filter((x) => x.change.chatId === chat.id);
        expect(mine.map((x) => x.channel).sort()).toEqual(
          [
            keys.channels.chat(chat.id),
            keys.channels.chat(chat.id),
            keys.channels.membership,
            keys.channels.membership,
          ].sort(),
        );
        const [add, remove] = [
          mine.find((x) => x.change.change === 'added')!,
          mine.find((x) => x.change.change === 'removed')!,
        ];
        expect(add.change).toMatchObject({ userIds: [c.user.id], seq: 0 });
        expect(remove.change.v).toBeGreaterThan(add.change.v!);
        for (const x of mine) expect(x.change.v).toBe(x.change.change === 'added' ? add.change.v : remove.change.v);
      } finally {
        listener.disconnect();
      }
    });

    it('applies only the newest change of a member: a late copy of an addition does not undo the removal after it', async () => {
      const keys = createKeys(env.config.REDIS_KEY_PREFIX);
      const chat = await app.api.newChat(a, [b]);
      const cs = await connectClient(app.url, c.token);
      const listener = listenerOn(env.redis);
      const additions: string[] = [];
      listener.on('message', (_channel: string, payload: string) => {
        if ((JSON.parse(payload) as MembershipChange).change === 'added') additions.push(payload);
      });
      try {
        await listener.subscribe(keys.channels.membership);
        expect(
          (await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: c.user.id }, a.token)).status,
        ).toBe(201);
        await expectDelivery(cs, a, chat.id, 'after add');
        expect(
          (await app.api.request('DELETE', `/api/chats/${chat.id}/members/${c.user.id}`, undefined, a.token)).status,
        ).toBe(204);
        await waitFor(() => additions.length === 1, 'the addition');
        // The addition's copy arriving again, after the removal (as one may, on the other channel).
        await env.redis.publish(keys.channels.membership, additions[0]!);
        await expectNoDelivery(cs, chat.id, a, b);
      } finally {
        listener.disconnect();
        await cs.close();
      }
    });

    it('lets only the creator remove others', async () => {
      const chat = await app.api.newChat(a, [b, c]);
      const r = await app.api.request('DELETE', `/api/chats/${chat.id}/members/${c.user.id}`, undefined, b.token);
      expect(r.status).toBe(403);
      const leave = await app.api.request('DELETE', `/api/chats/${chat.id}/members/${b.user.id}`, undefined, b.token);
      expect(leave.status).toBe(204);
    });
  });

  /**
   * `sender` sends one more message to the chat, which `socket` (of someone removed from it) must
   * not get: once `member` has it from a sync, it went out, and `socket` would have had it.
   */
  async function expectNoDelivery(
    socket: Awaited<ReturnType<typeof connectClient>>,
    chatId: string,
    sender: TestUser,
    member: TestUser,
  ) {
    const before = socket.frames.length;
    const sent = await app.api.send(sender.token, chatId, 'not for the removed');
    expect(sent.status).toBe(201);
    const bs = await connectClient(app.url, member.token);
    bs.send({ type: 'sync', chats: { [chatId]: sent.body.message.seq - 1 } });
    await bs.next((f) => f.type === 'synced', 'synced');
    await bs.close();
    expect(socket.frames.slice(before).filter((f) => f.type === 'message')).toEqual([]);
  }

  /** A connection of the test's own for (sharded) subscriptions: on a cluster, one per master as the api's. */
  function listenerOn(redis: RedisClient): RedisClient {
    return isCluster(redis) ? redis.duplicate(undefined, { shardedSubscribers: true }) : redis.duplicate();
  }

  /** Sends once; the socket must receive it: the change was announced before the answer, and the api delivers what follows it (from the log, if it had to subscribe to the chat first). */
  async function expectDelivery(
    socket: Awaited<ReturnType<typeof connectClient>>,
    sender: TestUser,
    chatId: string,
    label: string,
  ) {
    const sent = await app.api.send(sender.token, chatId, label);
    expect(sent.status).toBe(201);
    await socket.next(messageWithId(sent.body.message.id), label);
  }
});
