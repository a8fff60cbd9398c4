import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveReport } from '../../src/metrics/worker-metrics.js';
import { QUEUES } from '../../src/queues/definitions.js';
import { SCHEDULED_JOBS } from '../../src/queues/definitions.js';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startProcess } from '../helpers/processes.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient } from '../helpers/ws-client.js';

const INTERVAL_MS = 3_600_000;

let env: TestEnv;
let api: RunningProcess;
let worker: RunningProcess;
let client: ApiClient;
let archiveQueue: Queue;

beforeAll(async () => {
  // LOG_LEVEL info: the request log is under test. No BULL_BOARD_PASSWORD: the board stays off.
  env = await createTestEnv({ LOG_LEVEL: 'info', ARCHIVE_INTERVAL_MS: String(INTERVAL_MS), WORKER_METRICS_PORT: '0' });
  [api, worker] = await Promise.all([
    startApiProcess(env.env),
    startProcess(
      'workers/main.ts',
      env.env,
      /parley worker metrics on (http:\/\/\S+)\/metrics[\s\S]*parley worker ready/,
    ),
  ]);
  client = new ApiClient(api.url);
  archiveQueue = new Queue(QUEUES.archive, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
});
afterAll(async () => {
  await archiveQueue?.close();
  await Promise.all([api?.kill(), worker?.kill()]);
  await env?.cleanup();
});

const workerMetrics = async () => (await fetch(`${worker.url}/metrics`)).text();

describe('the worker process', () => {
  it('schedules the archive with a job scheduler, and the run shows in its own /metrics', async () => {
    const scheduler = await archiveQueue.getJobScheduler(SCHEDULED_JOBS.archive.schedulerId);
    expect(scheduler).toMatchObject({ every: INTERVAL_MS, name: 'archive' });
    // An `every` schedule runs once at once, then every interval.
    await waitFor(
      async () => (sample(await workerMetrics(), 'parley_archive_runs_total') ?? 0) >= 1,
      'the first scheduled run',
    );
  });

  it('counts persisted messages and archive runs asked for through the queue', async () => {
    const [a, b] = await Promise.all([client.newUser('wm_a'), client.newUser('wm_b')]);
    const chat = await client.newChat(a, [b]);
    for (let i = 1; i <= 7; i++) expect((await client.send(a.token, chat.id, `m${i}`)).status).toBe(201);
    await waitFor(async () => sample(await workerMetrics(), 'parley_persist_inserted_total') === 7, '7 rows inserted');
    const text = await workerMetrics();
    expect(sample(text, 'parley_persist_messages_total')).toBe(7);
    expect(sample(text, 'parley_persist_batches_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'parley_persist_batch_size_count')).toBe(sample(text, 'parley_persist_batches_total'));
    expect(sample(text, 'parley_queue_jobs', { queue: QUEUES.persist, state: 'failed' })).toBe(0);
    expect(sample(text, 'parley_collector_up', { collector: 'queues' })).toBe(1);

    const runsBefore = sample(text, 'parley_archive_runs_total') ?? 0;
    const job = await archiveQueue.add('archive', {});
    const done = await waitFor(async () => {
      const j = await Job.fromId<Record<string, never>, ArchiveReport>(archiveQueue, job.id!);
      return j?.finishedOn ? j : undefined;
    }, 'the archive job to finish');
    expect(done.failedReason).toBeUndefined();
    expect(done.returnvalue).toMatchObject({ chats: 1, failedChats: 0, expiring: 1 });
    expect(sample(await workerMetrics(), 'parley_archive_runs_total')).toBe(runsBefore + 1);
    expect(await env.redis.ttl(`${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:seq`)).toBeGreaterThan(0);
  });
});

describe('the api process log', () => {
  it('says Bull Board is off without a password, and writes one line per request with no secret in it', async () => {
    expect(api.output()).toContain('Bull Board not mounted: BULL_BOARD_PASSWORD is not set');
    const from = api.output().length;
    expect((await fetch(`${api.url}/admin/queues`)).status).toBe(404);

    const username = `logged_${Date.now()}`;
    const password = 'a-password-that-must-not-be-logged';
    expect((await client.request('POST', '/api/users', { username, password })).status).toBe(201);
    const login = await client.request('POST', '/api/sessions', { username, password });
    const token = login.body.token as string;
    expect((await client.request('GET', '/api/me?token=also-not-logged', undefined, token)).status).toBe(200);
    const socket = await connectClient(api.url, token);
    await socket.close();

    const requestLines = () =>
      api
        .output()
        .slice(from)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === 'request');
    const ours = () =>
      requestLines().filter((l) =>
        ['/api/users', '/api/sessions', '/api/me', '/admin/queues'].includes(l.path as string),
      );
    await waitFor(() => ours().length >= 4, 'the request lines');
    expect(
      ours()
        .map((l) => `${l.method} ${l.path} ${l.status}`)
        .sort(),
    ).toEqual(['GET /admin/queues 404', 'GET /api/me 200', 'POST /api/sessions 200', 'POST /api/users 201'].sort());
    for (const line of ours())
      expect(Object.keys(line)).toEqual(expect.arrayContaining(['method', 'path', 'status', 'ms']));
    const everything = api.output();
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(password);
    expect(everything).not.toContain('also-not-logged');
  });
});
