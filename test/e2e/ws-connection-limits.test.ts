import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startPrivateRedis, type PrivateRedis } from '../../scripts/faults/private-services.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, TestSocket } from '../helpers/ws-client.js';

/**
 * Connection caps with real api processes: per user across processes (counted in Redis), per
 * process, and per user on one process while Redis is unreachable. Refused before the upgrade.
 */
const PER_USER = 3;
const PER_PROCESS = 5;

interface Attempt {
  status: number;
  body: { error?: { code: string; message: string } } | null;
  /** The socket, when the upgrade succeeded (its `ready` has arrived). */
  socket?: TestSocket;
}

/** Tries to open a socket; an open one is kept (and waited on until `ready`), a refusal read. */
async function attempt(baseUrl: string, token: string): Promise<Attempt> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
  const socket = new TestSocket(ws); // before 'open': `ready` may come in the same packet
  const outcome = await new Promise<Attempt | 'open'>((resolve, reject) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Attempt['body'] }));
    });
    ws.once('error', reject);
  });
  if (outcome !== 'open') return outcome;
  await socket.next((f) => f.type === 'ready', 'ready');
  return { status: 101, body: null, socket };
}

const refused = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('across two api processes', () => {
  let env: TestEnv;
  let api1: RunningProcess, api2: RunningProcess;
  let http: ApiClient;
  const conns = (u: TestUser) => env.redis.zcard(`${env.config.REDIS_KEY_PREFIX}presence:{${u.user.id}}:conns`);

  beforeAll(async () => {
    env = await createTestEnv({
      WS_MAX_CONNECTIONS_PER_USER: String(PER_USER),
      WS_MAX_CONNECTIONS: String(PER_PROCESS),
    });
    [api1, api2] = await Promise.all([startApiProcess(env.env), startApiProcess(env.env)]);
    http = new ApiClient(api1.url);
  });
  afterAll(async () => {
    await Promise.all([api1, api2].filter(Boolean).map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  it('lets one user hold at most WS_MAX_CONNECTIONS_PER_USER sockets in all, refused with 429 before the upgrade', async () => {
    const u = await http.newUser('capped');
    const held = [
      await connectClient(api1.url, u.token),
      await connectClient(api1.url, u.token),
      await connectClient(api2.url, u.token),
    ];
    for (const api of [api1, api2]) {
      expect(await attempt(api.url, u.token)).toEqual({ status: 429, body: refused('rate_limited') });
    }
    await held.shift()!.close();
    await waitFor(async () => (await conns(u)) === PER_USER - 1, 'the closed socket forgotten');
    held.push(await connectClient(api2.url, u.token));
    await Promise.all(held.map((s) => s.close()));
    await waitFor(async () => (await conns(u)) === 0, 'every socket forgotten');
  });

  it('holds when one user opens many sockets at once on both processes', async () => {
    const u = await http.newUser('burst');
    // Within each process's own cap: only the per-user count refuses.
    const n = 2 * (PER_PROCESS - 1);
    const results = await Promise.all(Array.from({ length: n }, (_, i) => attempt((i % 2 ? api1 : api2).url, u.token)));
    expect(results.filter((r) => r.status === 101)).toHaveLength(PER_USER);
    expect(results.filter((r) => r.status === 429)).toHaveLength(n - PER_USER);
    await Promise.all(results.map((r) => r.socket?.close()));
    await waitFor(async () => (await conns(u)) === 0, 'every socket forgotten');
  });

  it('lets one process hold at most WS_MAX_CONNECTIONS sockets, refused with 503 before the upgrade', async () => {
    const users = await Promise.all(['p1', 'p2', 'p3'].map((n) => http.newUser(n)));
    const [p1, p2, p3] = users as [TestUser, TestUser, TestUser];
    const held: TestSocket[] = [];
    for (const u of [p1, p1, p1, p2, p2]) held.push(await connectClient(api1.url, u.token));
    expect(await attempt(api1.url, p3.token)).toEqual({ status: 503, body: refused('unavailable') });
    // The other process has room; the user has not reached their own cap.
    const elsewhere = await attempt(api2.url, p3.token);
    expect(elsewhere.status).toBe(101);
    await held.shift()!.close();
    await waitFor(async () => (await conns(p1)) === 2, 'the closed socket forgotten');
    const room = await attempt(api1.url, p3.token);
    expect(room.status).toBe(101);
    await Promise.all([...held, elsewhere.socket!, room.socket!].map((s) => s.close()));
  });
});

describe('while Redis is unreachable', () => {
  let redis: PrivateRedis;
  let env: TestEnv;
  let api: RunningProcess;

  beforeAll(async () => {
    redis = await startPrivateRedis({ aof: false });
    env = await createTestEnv({ REDIS_URL: redis.url, WS_MAX_CONNECTIONS_PER_USER: '2' });
    env.redis.on('error', () => undefined); // while the test has Redis stopped
    api = await startApiProcess(env.env);
  });
  afterAll(async () => {
    await redis?.start(); // the test stopped it; the api shuts down quickly with it back, and cleanup deletes keys there
    await api?.kill('SIGTERM');
    await env?.cleanup();
    await redis?.destroy();
  });

  it('counts the connections of each user on this process instead', async () => {
    const u = await new ApiClient(api.url).newUser('offline-redis');
    await redis.kill();
    const held = [await connectClient(api.url, u.token), await connectClient(api.url, u.token)];
    expect(await attempt(api.url, u.token)).toEqual({ status: 429, body: refused('rate_limited') });
    await held.shift()!.close();
    // Nothing to watch but the process itself: it lets one in once it has processed the close.
    const again = await waitFor(async () => {
      const r = await attempt(api.url, u.token);
      return r.status === 101 ? r.socket : null;
    }, 'room for one more');
    await Promise.all([...held, again].map((s) => s.close()));
  });
});
