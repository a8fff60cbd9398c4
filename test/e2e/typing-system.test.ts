import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * Typing indicators and system broadcasts across two real api processes. Typing needs no worker
 * (it never reaches PostgreSQL), and neither do broadcasts.
 */
const ADMIN_TOKEN = 'test-admin-token-0123456789';
const TYPING_TTL_MS = 800;

describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let api1: RunningProcess, api2: RunningProcess;
  let http: ApiClient;

  beforeAll(async () => {
    env = await createTestEnv(
      { ADMIN_TOKEN, TYPING_TTL_MS: String(TYPING_TTL_MS), TYPING_THROTTLE_MS: '1000' },
      { redis: kind },
    );
    [api1, api2] = await Promise.all([startApiProcess(env.env), startApiProcess(env.env)]);
    http = new ApiClient(api1.url);
  });
  afterAll(async () => {
    await Promise.all([api1, api2].filter(Boolean).map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  const broadcast = (event: string, data: unknown, token: string | undefined = ADMIN_TOKEN, via = http) =>
    via.request('POST', '/api/admin/broadcast', { event, data }, token);

  /** A system event published now and received by every socket: whatever was published before it has arrived. */
  async function barrier(sockets: TestSocket[], label: string): Promise<void> {
    expect((await broadcast('test.barrier', { label })).status).toBe(202);
    await Promise.all(
      sockets.map((s) =>
        s.next((f: Frame) => f.type === 'system' && (f.data as { label?: string })?.label === label, label),
      ),
    );
  }

  /** Every row of every table of the test's database, as one text: equal snapshots mean nothing was written. */
  async function snapshot(): Promise<string> {
    const { rows } = await env.pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    const parts: string[] = [];
    for (const { table_name } of rows) {
      const r = await env.pool.query(
        `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM "${table_name}" t`,
      );
      parts.push(`${table_name}:${r.rows[0].h}`);
    }
    return parts.join(',');
  }

  describe('typing', () => {
    let a: TestUser, b: TestUser, c: TestUser, d: TestUser;
    beforeAll(async () => {
      [a, b, c, d] = await Promise.all([
        http.newUser('typer'),
        http.newUser('peer1'),
        http.newUser('peer2'),
        http.newUser('outsider'),
      ]);
    });

    it('reaches the other members on both api processes, never the typer, never outsiders, and is never stored', async () => {
      const chat = await http.newChat(a, [b, c]);
      // The typer has a connection on each process; b is on api1, c and the outsider d on api2.
      const [a1, a2, bs, cs, ds] = await Promise.all([
        connectClient(api1.url, a.token),
        connectClient(api2.url, a.token),
        connectClient(api1.url, b.token),
        connectClient(api2.url, c.token),
        connectClient(api2.url, d.token),
      ]);
      const before = await snapshot();

      a1.send({ type: 'typing', chatId: chat.id });
      const want = { type: 'typing', chatId: chat.id, userId: a.user.id };
      expect(await bs.next((f) => f.type === 'typing', 'typing on api1')).toEqual(want);
      expect(await cs.next((f) => f.type === 'typing', 'typing on api2')).toEqual(want);
      // The key expires by itself after a few seconds (here TYPING_TTL_MS).
      const typingKey = `${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:typing:${a.user.id}`;
      const pttl = await env.redis.pttl(typingKey);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(TYPING_TTL_MS);
      await waitFor(async () => (await env.redis.exists(typingKey)) === 0, 'typing key expired');

      await barrier([a1, a2, bs, cs, ds], 'after typing');
      for (const s of [a1, a2, ds]) expect(s.of('typing')).toEqual([]);
      for (const s of [a1, a2, bs, cs, ds]) expect(s.of('error')).toEqual([]);
      expect(await snapshot()).toBe(before);

      ds.send({ type: 'typing', chatId: chat.id });
      expect((await ds.next((f) => f.type === 'error', 'refusal')).code).toBe('forbidden');
      await Promise.all([a1, a2, bs, cs, ds].map((s) => s.close()));
    });

    it('thins a burst to about one forward per second per user and chat', async () => {
      const chat = await http.newChat(a, [b]);
      const other = await http.newChat(a, [b]);
      const [as, bs] = await Promise.all([connectClient(api1.url, a.token), connectClient(api2.url, b.token)]);
      for (let i = 0; i < 30; i++) as.send({ type: 'typing', chatId: chat.id });
      // Another chat has its own window.
      as.send({ type: 'typing', chatId: other.id });
      await bs.next((f) => f.type === 'typing' && f.chatId === other.id, 'typing in the other chat');
      await barrier([as, bs], 'after burst');
      const forwarded = bs.of('typing').filter((f) => f.chatId === chat.id).length;
      expect(forwarded).toBeGreaterThanOrEqual(1);
      expect(forwarded).toBeLessThanOrEqual(2);
      expect(as.of('error')).toEqual([]);
      await Promise.all([as.close(), bs.close()]);
    });
  });

  describe('system broadcast', () => {
    it('reaches every client on both api processes, whoever they are', async () => {
      const [x, y] = await Promise.all([http.newUser('x'), http.newUser('y')]);
      const sockets = await Promise.all([
        connectClient(api1.url, x.token),
        connectClient(api2.url, y.token),
        connectClient(api2.url, x.token),
      ]);
      const r = await broadcast(
        'maintenance.scheduled',
        { at: '2030-01-01T00:00:00.000Z', minutes: 5 },
        ADMIN_TOKEN,
        new ApiClient(api2.url),
      );
      expect(r.status).toBe(202);
      expect(r.body).toEqual({ event: 'maintenance.scheduled', processes: 2 });
      for (const s of sockets) {
        const f = await s.next((fr) => fr.type === 'system' && fr.event === 'maintenance.scheduled', 'system frame');
        expect(f).toEqual({
          type: 'system',
          event: 'maintenance.scheduled',
          data: { at: '2030-01-01T00:00:00.000Z', minutes: 5 },
        });
      }
      await Promise.all(sockets.map((s) => s.close()));
    });

    it('needs the admin token, and validates the event', async () => {
      const user = await http.newUser('notadmin');
      for (const token of [undefined, 'wrong', user.token]) {
        const r = await http.request('POST', '/api/admin/broadcast', { event: 'x' }, token);
        expect(r.status).toBe(401);
        expect(r.body.error.code).toBe('unauthorized');
      }
      const bad = await http.request('POST', '/api/admin/broadcast', { event: 'has spaces' }, ADMIN_TOKEN);
      expect(bad.status).toBe(400);
      expect((await http.request('POST', '/api/admin/broadcast', '{not json', ADMIN_TOKEN)).status).toBe(400);
    });
  });
});
