import type { Job, JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { createRedis } from '../../src/infra/clients.js';
import { createLogger } from '../../src/logger.js';
import { persistJobOptions, QUEUES } from '../../src/queues/definitions.js';
import { closeQueues, type OpenQueues, openQueues } from '../../src/queues/open-queues.js';
import { receiptJobOptions } from '../../src/queues/receipt-jobs.js';
import { startWorkers, type StopWorkers } from '../../workers/main.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Jobs whose data no worker can use (added by hand, from Bull Board, by another version) fail at
 * once, after one attempt, and alone: the good jobs taken in the same batch are written as if
 * the garbage had not been there. The api (in this process) queues the good jobs while no worker
 * runs, the garbage is added beside them, then the real workers start and take them together.
 */
let env: TestEnv;
let config: Config;
let app: InProcess;
let connection: Redis;
let queues: OpenQueues;
let stopWorkers: StopWorkers | undefined;
let a: TestUser, b: TestUser;

beforeAll(async () => {
  // A long batch wait, so that each worker takes everything waiting into one batch.
  env = await createTestEnv({ PERSIST_BATCH_WAIT_MS: '300', RECEIPTS_BATCH_WAIT_MS: '300', ARCHIVE_INTERVAL_MS: '0' });
  config = env.config;
  app = await startInProcess(env, { workers: false });
  connection = createRedis(config, 'queue', 'test-queues');
  queues = openQueues(connection, config);
  [a, b] = await Promise.all([app.api.newUser('a'), app.api.newUser('b')]);
});
afterAll(async () => {
  await stopWorkers?.();
  await app?.stop();
  if (queues) await closeQueues(queues);
  await connection?.quit();
  await env?.cleanup();
});

/** Adds jobs as anyone with access to the queue could, with the options their queue's jobs get. */
async function addGarbage(queue: Queue, jobs: { name: string; data: unknown }[], opts: JobsOptions): Promise<Job[]> {
  return queue.addBulk(jobs.map((j) => ({ name: j.name, data: j.data, opts })));
}

async function settled(job: Job): Promise<{ state: string; attemptsMade: number; failedReason: string }> {
  const now = (await queues.all.find((q) => q.name === job.queueName)?.getJob(job.id!)) as Job | undefined;
  if (!now) return { state: 'gone', attemptsMade: 0, failedReason: '' };
  return { state: await now.getState(), attemptsMade: now.attemptsMade, failedReason: now.failedReason ?? '' };
}

describe('job data no worker can use', () => {
  it('fails after one attempt on every queue, and the good jobs of the same batch are written', async () => {
    const chat = await app.api.newChat(a, [b]);
    for (let i = 1; i <= 3; i++) expect((await app.api.send(a.token, chat.id, `m${i}`, `k${i}`)).status).toBe(201);
    // b reads up to 3: a good receipts job (queued by the api); a's last-seen time: another.
    expect((await app.api.request('POST', `/api/chats/${chat.id}/read`, { seq: 3 }, b.token)).status).toBe(204);
    const seenAt = new Date().toISOString();
    await queues.sharded.receipts[0]!.add('seen', { userId: a.user.id, at: seenAt }, receiptJobOptions(config));

    const garbage = [
      ...(await addGarbage(
        queues.sharded.persist[0]!,
        [
          { name: 'persist', data: null },
          { name: 'persist', data: {} },
          { name: 'persist', data: { chatId: 'not-a-uuid' } },
          { name: 'persist', data: { chatId: 7 } },
        ],
        persistJobOptions(config),
      )),
      ...(await addGarbage(
        queues.sharded.receipts[0]!,
        [
          { name: 'bogus', data: { chatId: chat.id, userId: b.user.id, seq: 1 } },
          // User ids are opaque (a JWT's sub), but never hold whitespace or `/`.
          { name: 'read', data: { chatId: chat.id, userId: 'no\u0007body', seq: 2 } },
          { name: 'read', data: { chatId: chat.id, userId: 'a/b', seq: 2 } },
          { name: 'read', data: { chatId: chat.id, userId: b.user.id, seq: 'three' } },
          { name: 'seen', data: { userId: b.user.id, at: 'yesterday' } },
        ],
        receiptJobOptions(config),
      )),
      ...(await addGarbage(queues.single.archive, [{ name: 'bogus', data: {} }], { attempts: 5 })),
      ...(await addGarbage(queues.single.presence, [{ name: 'bogus', data: {} }], { attempts: 5 })),
      ...(await addGarbage(queues.single[QUEUES.sessionPurge], [{ name: 'bogus', data: {} }], { attempts: 5 })),
    ];

    stopWorkers = await startWorkers(config, createLogger('silent', 'test'));

    // The good ones: the three messages, b's read position and a's last-seen time.
    await waitFor(
      async () =>
        (await env.pool.query('SELECT count(*)::int AS n FROM messages WHERE chat_id = $1', [chat.id])).rows[0].n === 3,
      'the three messages in PostgreSQL',
      { timeoutMs: 10_000 },
    );
    await waitFor(
      async () =>
        Number(
          (
            await env.pool.query('SELECT last_read_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2', [
              chat.id,
              b.user.id,
            ])
          ).rows[0]?.last_read_seq,
        ) === 3,
      "b's read position in PostgreSQL",
      { timeoutMs: 10_000 },
    );
    await waitFor(
      async () =>
        (await env.pool.query('SELECT last_seen_at FROM users WHERE id = $1', [a.user.id])).rows[0]?.last_seen_at ===
        seenAt,
      "a's last-seen time in PostgreSQL",
      { timeoutMs: 10_000 },
    );

    // Every garbage job: failed, once, saying why; never retried.
    await waitFor(
      async () => (await Promise.all(garbage.map(settled))).every((s) => s.state === 'failed'),
      'every garbage job failed',
      {
        timeoutMs: 10_000,
      },
    );
    for (const job of garbage) {
      const s = await settled(job);
      expect(s, `${job.queueName} ${job.name} ${JSON.stringify(job.data)}`).toMatchObject({
        state: 'failed',
        attemptsMade: 1,
      });
      expect(s.failedReason).toMatch(/^(invalid|unknown) /);
    }
  });
});
