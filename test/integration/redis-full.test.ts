import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * Redis at maxmemory (docs/operations.md "When Redis is full"): a private redis-server, since
 * filling the shared one would fail every other test running beside this file.
 */
let redisServer: ChildProcess;
let env: TestEnv;
let app: InProcess;
let a: TestUser;
let b: TestUser;
let chatId: string;
let socket: TestSocket;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  redisServer = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  probe.on('error', () => undefined); // refused until the server listens
  await waitFor(() => probe.ping().then((r) => r === 'PONG'), 'the private redis-server');
  probe.disconnect();

  env = await createTestEnv({
    REDIS_URL: `redis://127.0.0.1:${port}`,
    ARCHIVE_INTERVAL_MS: '0',
    METRICS_LAG_MAX_AGE_MS: '0',
  });
  app = await startInProcess(env);
  [a, b] = await Promise.all([app.api.newUser('full_a'), app.api.newUser('full_b')]);
  chatId = (await app.api.newChat(a, [b], 'full')).id;
  socket = await connectClient(app.url, a.token);
});
afterAll(async () => {
  await env?.redis.config('SET', 'maxmemory', '0').catch(() => undefined);
  await socket?.close();
  await app?.stop();
  await env?.cleanup();
  if (redisServer && redisServer.exitCode === null) {
    redisServer.kill('SIGTERM');
    await once(redisServer, 'exit');
  }
});

describe('when Redis is full', () => {
  it('answers sends with 503 unavailable, stays in normal mode, and loses nothing acked', async () => {
    const first = await app.api.send(a.token, chatId, 'before it filled up', 'c-0');
    expect(first.status).toBe(201);

    // Any write now exceeds maxmemory; under noeviction Redis refuses it rather than evict.
    await env.redis.config('SET', 'maxmemory', '1');
    // More refusals than the circuit's failure threshold: Redis answers, so no degraded mode.
    for (let i = 0; i < env.config.REDIS_FAILURE_THRESHOLD + 2; i++) {
      const refused = await app.api.send(a.token, chatId, 'while full', 'c-1');
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('unavailable');
    }
    socket.send({ type: 'send', chatId, body: 'ws while full', clientMsgId: 'c-ws' });
    const error = await socket.next((f) => f.type === 'error' && f.clientMsgId === 'c-ws', 'the refusal over WS');
    expect(error.code).toBe('unavailable');
    expect(socket.of('ack').filter((f) => f.clientMsgId === 'c-ws')).toEqual([]);

    const ready = await app.api.request('GET', '/readyz');
    expect(ready.body).toEqual({ redis: true, postgres: true, mode: 'normal' });
    expect(sample((await app.api.request<string>('GET', '/metrics')).body, 'parley_redis_maxmemory_bytes')).toBe(1);

    // Room again: the client's retries with the same clientMsgId are accepted, with the next seqs.
    await env.redis.config('SET', 'maxmemory', '0');
    const retried = await app.api.send(a.token, chatId, 'while full', 'c-1');
    expect(retried.status).toBe(201);
    expect(retried.body.message.seq).toBe(2);
    socket.send({ type: 'send', chatId, body: 'ws while full', clientMsgId: 'c-ws' });
    const ack = await socket.next((f) => f.type === 'ack' && f.clientMsgId === 'c-ws', 'the ack of the retry');
    expect((ack.message as { seq: number }).seq).toBe(3);

    await waitFor(async () => {
      const { rows } = await env.pool.query('SELECT seq FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId]);
      return rows.length === 3 && rows.map((r) => r.seq).join() === '1,2,3';
    }, 'every acked message in PostgreSQL');
    const history = await app.api.history(b.token, chatId);
    expect(history.body.messages.map((m) => m.body)).toEqual(['before it filled up', 'while full', 'ws while full']);
  });
});
