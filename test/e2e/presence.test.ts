import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Presence with real processes: two api processes and a worker (the sweep), plus a third api
 * that is killed with SIGKILL. A short TTL, so that expiry is seen within the test.
 */
const TTL_MS = 1500;
const SWEEP_MS = 250;

describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let api1: RunningProcess, api2: RunningProcess, worker: RunningProcess;
  const extra: RunningProcess[] = [];
  let http: ApiClient;

  beforeAll(async () => {
    env = await createTestEnv(
      { PRESENCE_TTL_MS: String(TTL_MS), PRESENCE_SWEEP_MS: String(SWEEP_MS) },
      { redis: kind },
    );
    [api1, api2, worker] = await Promise.all([
      startApiProcess(env.env),
      startApiProcess(env.env),
      startWorkerProcess(env.env),
    ]);
    http = new ApiClient(api1.url);
  });
  afterAll(async () => {
    await Promise.all([api1, api2, worker, ...extra].filter(Boolean).map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  const key = (k: string) => `${env.config.REDIS_KEY_PREFIX}${k}`;
  const presenceOf = (s: TestSocket, userId: string) =>
    s.frames.filter((f) => f.type === 'presence' && f.userId === userId);
  const nextPresence = (s: TestSocket, userId: string, status: string) =>
    s.next((f) => f.type === 'presence' && f.userId === userId && f.status === status, `${status} of ${userId}`);

  /** A message sent now and received by `s`: every pub/sub event published before it has arrived too. */
  async function marker(s: TestSocket, sender: TestUser, chatId: string): Promise<void> {
    const sent = await http.send(sender.token, chatId, 'marker');
    expect(sent.status).toBe(201);
    await s.next(messageWithId(sent.body.message.id), 'marker');
  }

  /** The sweep has let go of the user (their index entry passed and was dropped): a duplicate offline would be out. */
  const indexDropped = (userId: string) =>
    waitFor(async () => (await env.redis.zscore(key('presence-index'), userId)) === null, 'index entry dropped');

  async function status(asker: TestUser, userId: string, via = http) {
    const r = await via.request('GET', `/api/users/${userId}/presence`, undefined, asker.token);
    expect(r.status).toBe(200);
    return r.body as { userId: string; status: string; lastSeenAt: string | null };
  }

  describe('presence across two api processes', () => {
    let u: TestUser, o: TestUser, s: TestUser;
    let shared: { id: string }, others: { id: string };
    beforeAll(async () => {
      [u, o, s] = await Promise.all([http.newUser('subject'), http.newUser('observer'), http.newUser('stranger')]);
      shared = await http.newChat(u, [o]);
      others = await http.newChat(o, [s]);
    });

    it('goes online on the first connection and offline, with lastSeenAt, only after the last one closes', async () => {
      const os = await connectClient(api1.url, o.token);
      const ss = await connectClient(api2.url, s.token);
      expect((await status(o, u.user.id)).status).toBe('offline');

      const dev1 = await connectClient(api1.url, u.token);
      const online = await nextPresence(os, u.user.id, 'online');
      expect(online).toEqual({ type: 'presence', userId: u.user.id, status: 'online', lastSeenAt: expect.any(String) });
      expect((await status(o, u.user.id, new ApiClient(api2.url))).status).toBe('online');

      const dev2 = await connectClient(api2.url, u.token);
      await waitFor(
        async () => (await env.redis.zcard(key(`presence:{${u.user.id}}:conns`))) === 2,
        'two connections registered',
      );
      await dev1.close();
      await waitFor(
        async () => (await env.redis.zcard(key(`presence:{${u.user.id}}:conns`))) === 1,
        'first device forgotten',
      );
      expect((await status(o, u.user.id)).status).toBe('online');

      await dev2.close();
      const offline = await nextPresence(os, u.user.id, 'offline');
      expect(Date.parse(offline.lastSeenAt as string)).toBeGreaterThanOrEqual(Date.parse(online.lastSeenAt as string));
      expect(await status(o, u.user.id, new ApiClient(api2.url))).toEqual({
        userId: u.user.id,
        status: 'offline',
        lastSeenAt: offline.lastSeenAt,
      });
      await waitFor(async () => {
        const { rows } = await env.pool.query('SELECT last_seen_at FROM users WHERE id = $1', [u.user.id]);
        return rows[0].last_seen_at === offline.lastSeenAt;
      }, 'last_seen_at in PostgreSQL');

      await indexDropped(u.user.id);
      await marker(os, u, shared.id);
      await marker(ss, o, others.id);
      expect(presenceOf(os, u.user.id).map((f) => f.status)).toEqual(['online', 'offline']);
      // The stranger shares no chat with u.
      expect(presenceOf(ss, u.user.id)).toEqual([]);
      await Promise.all([os.close(), ss.close()]);
    });

    it('takes a client that vanishes without a close offline well within the TTL', async () => {
      const os = await connectClient(api1.url, o.token);
      const dev = await connectClient(api2.url, u.token);
      await nextPresence(os, u.user.id, 'online');
      const from = os.frames.length;
      const started = Date.now();
      dev.ws.terminate(); // no close frame: the TCP connection just ends
      await os.next((f) => f.type === 'presence' && f.userId === u.user.id && f.status === 'offline', 'offline', from);
      expect(Date.now() - started).toBeLessThan(TTL_MS);
      await os.close();
    });

    it('answers 404 for an unknown user and 400 for a malformed id', async () => {
      const unknown = await http.request(
        'GET',
        '/api/users/9f1d2c3b-0000-4000-8000-000000000000/presence',
        undefined,
        o.token,
      );
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('not_found');
      // Ids are opaque: any of 1-255 printable characters without `/` (else 400).
      expect((await http.request('GET', '/api/users/no%20pe/presence', undefined, o.token)).status).toBe(404);
      expect((await http.request('GET', '/api/users/no%07pe/presence', undefined, o.token)).status).toBe(400);
      // Only your own presence, or that of someone you share a chat with (the stranger shares none).
      const hidden = await http.request('GET', `/api/users/${u.user.id}/presence`, undefined, s.token);
      expect(hidden.status).toBe(403);
      expect(JSON.stringify(hidden.body)).not.toMatch(/online|offline|lastSeenAt/);
      expect((await http.request('GET', `/api/users/${s.user.id}/presence`, undefined, s.token)).status).toBe(200);
      expect((await http.request('GET', `/api/users/${u.user.id}/presence`)).status).toBe(401);
    });
  });

  describe('an api process killed with SIGKILL', () => {
    it('takes its users offline within the TTL (and the sweep), but not users still connected elsewhere', async () => {
      const [u, v, o] = await Promise.all([http.newUser('multi'), http.newUser('single'), http.newUser('watcher')]);
      const chat = await http.newChat(o, [u, v]);
      const doomed = await startApiProcess(env.env);
      extra.push(doomed);

      const os = await connectClient(api1.url, o.token);
      const uAlive = await connectClient(api2.url, u.token);
      await nextPresence(os, u.user.id, 'online');
      await connectClient(doomed.url, u.token);
      await connectClient(doomed.url, v.token);
      await nextPresence(os, v.user.id, 'online');
      await waitFor(
        async () => (await env.redis.zcard(key(`presence:{${u.user.id}}:conns`))) === 2,
        'u on two processes',
      );

      await doomed.kill('SIGKILL');
      const killedAt = Date.now();
      const offline = await nextPresence(os, v.user.id, 'offline');
      // The last heartbeat was at most TTL/3 before the kill; the sweep runs every SWEEP_MS.
      expect(Date.now() - killedAt).toBeLessThan(TTL_MS + SWEEP_MS + 1500);
      expect(Date.parse(offline.lastSeenAt as string)).toBeLessThanOrEqual(killedAt);
      expect((await status(o, v.user.id)).status).toBe('offline');

      // The sweep that let v go ran after u's dead connection expired too: u stays online.
      await marker(os, v, chat.id);
      expect(presenceOf(os, u.user.id).map((f) => f.status)).toEqual(['online']);
      expect((await status(o, u.user.id)).status).toBe('online');

      await uAlive.close();
      await nextPresence(os, u.user.id, 'offline');
      await Promise.all([indexDropped(u.user.id), indexDropped(v.user.id)]);
      await marker(os, o, chat.id);
      expect(presenceOf(os, u.user.id).map((f) => f.status)).toEqual(['online', 'offline']);
      expect(presenceOf(os, v.user.id).map((f) => f.status)).toEqual(['online', 'offline']);
      await os.close();
    });
  });
});
