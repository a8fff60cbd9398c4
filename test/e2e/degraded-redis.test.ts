import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../scripts/faults/private-services.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/** Redis killed under two api processes: chat goes on through PostgreSQL, then Redis returns. */
let redis: PrivateRedis;
let env: TestEnv;
const procs: RunningProcess[] = [];
let apis: ApiClient[];

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: true });
  env = await createTestEnv({ REDIS_URL: redis.url, REDIS_PROBE_MS: '200', DEGRADED_SEQ_GAP: '1000' });
  env.redis.on('error', () => undefined);
  procs.push(...(await Promise.all([startApiProcess(env.env), startApiProcess(env.env), startWorkerProcess(env.env)])));
  apis = [new ApiClient(procs[0]!.url), new ApiClient(procs[1]!.url)];
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await redis?.start().catch(() => undefined);
  await env?.cleanup();
  await redis?.destroy();
});

const mode = async (api: ApiClient) =>
  (await api.request('GET', '/readyz')).body as { mode: string; redis: boolean; postgres: boolean };

describe('Redis down', () => {
  it('keeps chat working through PostgreSQL across api processes, then resumes normal mode', async () => {
    const a: TestUser = await apis[0]!.newUser('a');
    const b: TestUser = await apis[1]!.newUser('b');
    const chat = await apis[0]!.newChat(a, [b]);
    const sa: TestSocket = await connectClient(procs[0]!.url, a.token);
    const sb: TestSocket = await connectClient(procs[1]!.url, b.token);

    const before = await apis[0]!.send(a.token, chat.id, 'before the outage', 'pre-1');
    expect(before.body.message.seq).toBe(1);
    await sb.next(messageWithId(before.body.message.id), 'pre-outage message');
    // Only what PostgreSQL holds is readable while Redis is away, so let the worker catch up first.
    await waitFor(
      async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === 1,
      'pre-outage message persisted',
    );

    await redis.kill('SIGKILL');
    await waitFor(
      async () => (await mode(apis[0]!)).mode === 'degraded' && (await mode(apis[1]!)).mode === 'degraded',
      'degraded mode on both apis',
    );
    expect(await mode(apis[0]!)).toEqual({ redis: false, postgres: true, mode: 'degraded' });

    // WS send on api 0 → acked, and delivered on api 1 through LISTEN/NOTIFY.
    sa.send({ type: 'send', chatId: chat.id, body: 'during (ws)', clientMsgId: 'deg-1' });
    const ack = await sa.next((f) => f.type === 'ack' && f.clientMsgId === 'deg-1', 'degraded ack');
    const degraded1 = ack.message as { id: string; seq: number };
    expect(degraded1.seq).toBeGreaterThan(1);
    await sb.next(messageWithId(degraded1.id), 'degraded message on the other api');

    // HTTP send on api 1 → 201, and delivered on api 0; seqs keep growing by one inside the outage.
    const http = await apis[1]!.send(b.token, chat.id, 'during (http)', 'deg-2');
    expect(http.status).toBe(201);
    expect(http.body.message.seq).toBe(degraded1.seq + 1);
    await sa.next(messageWithId(http.body.message.id), 'http degraded message on api 0');

    // Idempotent in degraded mode too, and history comes from PostgreSQL.
    const again = await apis[0]!.send(b.token, chat.id, 'during (http)', 'deg-2');
    expect(again.body.message).toEqual(http.body.message);
    const hist = await apis[0]!.history(a.token, chat.id);
    expect(hist.body.messages.map((m) => m.body)).toEqual(['before the outage', 'during (ws)', 'during (http)']);

    await redis.start();
    await waitFor(
      async () => (await mode(apis[0]!)).mode === 'normal' && (await mode(apis[1]!)).mode === 'normal',
      'normal mode again',
    );

    // The counter was raised past the degraded seqs; clientMsgIds stored in degraded mode stay idempotent.
    const after = await apis[0]!.send(a.token, chat.id, 'after the outage', 'post-1');
    expect(after.body.message.seq).toBe(http.body.message.seq + 1);
    await sb.next(messageWithId(after.body.message.id), 'post-outage message through Redis');
    const retried = await apis[1]!.send(a.token, chat.id, 'during (ws)', 'deg-1');
    expect(retried.body.message.id).toBe(degraded1.id);

    await waitFor(
      async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === 4,
      'all four in PostgreSQL',
    );
    const { rows } = await env.pool.query('SELECT seq, body FROM messages ORDER BY seq');
    expect(rows.map((r) => r.body)).toEqual(['before the outage', 'during (ws)', 'during (http)', 'after the outage']);
    await Promise.all([sa.close(), sb.close()]);
  });
});
