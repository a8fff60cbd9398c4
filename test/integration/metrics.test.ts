import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { QUEUES } from '../../src/queues/definitions.js';
import { startWorkers } from '../../workers/main.js';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

const ADMIN_TOKEN = 'admin-token-for-the-metrics-test';

let env: TestEnv;
let app: InProcess;
let stopWorkers: (() => Promise<void>) | undefined;
let a: TestUser;
let b: TestUser;
let chatId: string;
let sa: TestSocket;
let sb: TestSocket;

beforeAll(async () => {
  env = await createTestEnv({ METRICS_LAG_MAX_AGE_MS: '0', ADMIN_TOKEN, ARCHIVE_INTERVAL_MS: '0' });
  // The api alone first: every message stays unpersisted until the test starts the workers.
  app = await startInProcess(env, { workers: false });
  [a, b] = await Promise.all([app.api.newUser('met_a'), app.api.newUser('met_b')]);
  chatId = (await app.api.newChat(a, [b], 'metrics')).id;
});
afterAll(async () => {
  await sa?.close();
  await sb?.close();
  await stopWorkers?.();
  await app?.stop();
  await env?.cleanup();
});

async function scrape(): Promise<string> {
  const r = await fetch(`${app.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
  return r.text();
}

const lagRoute = (path = '', token: string | null = ADMIN_TOKEN) =>
  app.api.request(
    'GET',
    `/admin/persistence-lag${path}`,
    undefined,
    undefined,
    token ? { authorization: `Bearer ${token}` } : {},
  );

describe('metrics after a known workload', () => {
  it('counts sends, latencies, fan-out, connections, queue depths and the persistence lag', async () => {
    [sa, sb] = await Promise.all([connectClient(app.url, a.token), connectClient(app.url, b.token)]);
    for (let i = 1; i <= 6; i++) expect((await app.api.send(a.token, chatId, `http ${i}`, `h-${i}`)).status).toBe(201);
    for (let i = 1; i <= 4; i++) {
      sb.send({ type: 'send', chatId, body: `ws ${i}`, clientMsgId: `w-${i}` });
      await sb.next((f) => f.type === 'ack' && f.clientMsgId === `w-${i}`, `ack w-${i}`);
    }
    // A retry of an accepted send is answered with the original and is not a new send.
    const retry = await app.api.send(a.token, chatId, 'http 1', 'h-1');
    expect(retry.body.message.seq).toBe(1);
    const tenMessages = (s: TestSocket) =>
      s.until((fs) => fs.filter((f) => f.type === 'message').length >= 10, '10 messages');
    await Promise.all([tenMessages(sa), tenMessages(sb)]);

    const text = await scrape();
    expect(sample(text, 'parley_sends_total')).toBe(10);
    expect(sample(text, 'parley_send_ack_seconds_count')).toBe(10);
    expect(sample(text, 'parley_send_ack_seconds_bucket', { le: '+Inf' })).toBe(10);
    expect(sample(text, 'parley_send_ack_seconds_sum')).toBeGreaterThan(0);
    expect(sample(text, 'parley_fanout_seconds_count')).toBe(10);
    expect(sample(text, 'parley_fanout_frames_total')).toBe(20);
    expect(sample(text, 'parley_ws_connections')).toBe(2);

    // One persist job per chat and batch: the first send took the chat's ticket, the rest rode on it.
    expect(sample(text, 'parley_queue_jobs', { queue: QUEUES.persist, state: 'waiting' })).toBe(1);
    // Every queue this api opened (`webhooks` is a family, one queue per receiver: none configured here).
    for (const queue of Object.values(QUEUES).filter((n) => n !== QUEUES.webhooks)) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(sample(text, 'parley_queue_jobs', { queue, state }), `${queue} ${state}`).toBeGreaterThanOrEqual(0);
      }
    }
    expect(sample(text, 'parley_redis_used_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'parley_redis_maxmemory_bytes')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'parley_pg_pool_connections', { state: 'total' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'parley_pg_pool_max_connections')).toBe(env.config.PG_POOL_MAX);

    expect(sample(text, 'parley_persistence_lagging_chats')).toBe(1);
    expect(sample(text, 'parley_persistence_pending_messages')).toBe(10);
    expect(sample(text, 'parley_persistence_lag_seqs')).toBe(10);
    expect(sample(text, 'parley_persistence_oldest_unpersisted_seconds')).toBeGreaterThan(0);
    for (const collector of ['queues', 'redis', 'postgres', 'persistence']) {
      expect(sample(text, 'parley_collector_up', { collector }), collector).toBe(1);
    }
    // Process metrics come from this process's own registry.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('shows the lag per chat and overall to the admin, and no one else', async () => {
    expect((await lagRoute('', null)).status).toBe(401);
    expect((await lagRoute('', 'wrong')).status).toBe(401);
    const overall = await lagRoute();
    expect(overall.status).toBe(200);
    expect(overall.body).toMatchObject({ laggingChats: 1, pendingMessages: 10, lagSeqs: 10, truncated: false });
    expect(overall.body.worst[0]).toMatchObject({ chatId, newestAckedSeq: 10, newestPersistedSeq: 0, pending: 10 });
    const one = await lagRoute(`/${chatId}`);
    expect(one.body).toMatchObject({ chatId, newestAckedSeq: 10, newestPersistedSeq: 0, lagSeqs: 10, pending: 10 });
    expect(one.body.oldestUnpersistedAgeS).toBeGreaterThan(0);
    expect((await lagRoute('/not-a-chat')).status).toBe(400);
  });

  it('shows the lag gone once the workers caught up, and connections closed', async () => {
    stopWorkers = await startWorkers(env.config, createLogger('silent', 'test'));
    await waitFor(
      async () => sample(await scrape(), 'parley_persistence_pending_messages') === 0,
      'no pending messages',
    );
    const text = await scrape();
    expect(sample(text, 'parley_persistence_lagging_chats')).toBe(0);
    expect(sample(text, 'parley_persistence_oldest_unpersisted_seconds')).toBe(0);
    expect(sample(text, 'parley_queue_jobs', { queue: QUEUES.persist, state: 'waiting' })).toBe(0);
    expect((await lagRoute(`/${chatId}`)).body).toMatchObject({
      newestAckedSeq: 10,
      newestPersistedSeq: 10,
      lagSeqs: 0,
      pending: 0,
    });

    await Promise.all([sa.close(), sb.close()]);
    await waitFor(async () => sample(await scrape(), 'parley_ws_connections') === 0, 'connections back to 0');
  });

  it('answers /healthz and /readyz per the contract', async () => {
    expect((await app.api.request('GET', '/healthz')).status).toBe(200);
    const ready = await app.api.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ redis: true, postgres: true, mode: 'normal' });
  });
});
