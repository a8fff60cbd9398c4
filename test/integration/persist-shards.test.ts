import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { createRedis } from '../../src/infra/clients.js';
import { createLogger } from '../../src/logger.js';
import { closeQueues, type OpenQueues, openQueues } from '../../src/queues/open-queues.js';
import { shardOf } from '../../src/queues/shards.js';
import { startWorkers, type StopWorkers } from '../../workers/main.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * PERSIST_SHARDS=3 on the real api, workers, Redis and PostgreSQL: each chat's persist jobs (its
 * first one, and every hand-on after it) and its read receipts go to the chat's shard queue, each
 * shard's BullMQ keys under its own hash tag, and every message reaches PostgreSQL once.
 */
const SHARDS = 3;
/** Chats enough that every shard gets some (a shard left empty by chance: 3 * (2/3)^30, ~1e-5). */
const CHATS = 30;
const PER_CHAT = 4;

let env: TestEnv;
let config: Config;
let app: InProcess;
let connection: Redis;
let queues: OpenQueues;
let stopWorkers: StopWorkers | undefined;
let a: TestUser, b: TestUser;

beforeAll(async () => {
  // Completed jobs kept, so that the test can see which queue every job went to; a hold of 0
  // hands a chat on after every batch that wrote, so that hand-ons happen.
  env = await createTestEnv({
    PERSIST_SHARDS: String(SHARDS),
    QUEUE_KEEP_COMPLETED: '100000',
    PERSIST_HOLD_MS: '0',
    ARCHIVE_INTERVAL_MS: '0',
    // One sender sends every message: past the per-user send rate otherwise.
    SEND_RATE_BURST: '1000',
  });
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

/** Every job of each queue (any state), by queue: [shard, chatIds]. */
async function chatsByShard(shardQueues: Queue[]): Promise<string[][]> {
  return Promise.all(
    shardQueues.map(async (q) =>
      (await q.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'])).map(
        (j: Job<{ chatId: string }>) => j.data.chatId,
      ),
    ),
  );
}

async function sendRound(chats: { id: string }[], round: string): Promise<void> {
  for (const chat of chats) {
    for (let i = 1; i <= PER_CHAT; i++) {
      const r = await app.api.send(a.token, chat.id, `${round} ${i}`, `${chat.id}-${round}-${i}`);
      expect(r.status).toBe(201);
    }
  }
}

describe('sharded persist queues (PERSIST_SHARDS=3)', () => {
  it('puts each chat in its shard queue, under its own hash tag, and writes every message to PostgreSQL once', async () => {
    expect(queues.sharded.persist.map((q) => q.name)).toEqual(['persist-0', 'persist-1', 'persist-2']);
    expect(queues.sharded.receipts.map((q) => q.name)).toEqual(['receipts-0', 'receipts-1', 'receipts-2']);

    const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => app.api.newChat(a, [b], `c${i}`)));
    // No worker yet: the first round's jobs wait where the api put them.
    await sendRound(chats, 'first');
    const waiting = await chatsByShard(queues.sharded.persist);
    for (const chat of chats) {
      const shard = shardOf(chat.id, SHARDS);
      expect(waiting[shard]).toContain(chat.id);
      waiting.forEach((ids, n) => n !== shard && expect(ids).not.toContain(chat.id));
    }
    // Every shard has chats, and each shard's keys are under its own tag (not the shared prefix's).
    for (let n = 0; n < SHARDS; n++) {
      expect(waiting[n]!.length).toBeGreaterThan(0);
      const tag = config.QUEUE_PREFIX.replace(/[{}]/g, '');
      expect(await env.redis.exists(`{${tag}-persist-${n}}:persist-${n}:wait`)).toBe(1);
    }
    expect(await env.redis.keys(`${config.QUEUE_PREFIX}:persist:*`)).toEqual([]);
    // /metrics shows each shard's depth as its own queue (what Bull Board lists too: OpenQueues.all).
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    for (let n = 0; n < SHARDS; n++)
      expect(sample(metrics, 'parley_queue_jobs', { queue: `persist-${n}`, state: 'waiting' })).toBe(
        waiting[n]!.length,
      );
    expect(queues.all.map((q) => q.name).sort()).toEqual(
      ['archive', 'presence', 'session-purge', ...[0, 1, 2].flatMap((n) => [`persist-${n}`, `receipts-${n}`])].sort(),
    );

    // A read: its receipt job goes to the chat's receipts shard.
    const read = chats[0]!;
    expect((await app.api.request('POST', `/api/chats/${read.id}/read`, { seq: 2 }, b.token)).status).toBe(204);
    const receipts = await Promise.all(queues.sharded.receipts.map((q) => q.getWaiting()));
    expect(receipts.map((jobs) => jobs.length)).toEqual(
      Array.from({ length: SHARDS }, (_, n) => (n === shardOf(read.id, SHARDS) ? 1 : 0)),
    );

    // The workers consume every shard; a second round arrives while they run (hand-ons too).
    stopWorkers = await startWorkers(config, createLogger('silent', 'test'));
    await sendRound(chats, 'second');
    const total = CHATS * PER_CHAT * 2;
    await waitFor(
      async () =>
        (await env.pool.query('SELECT count(*)::int AS n FROM messages WHERE sender_id = $1', [a.user.id])).rows[0]
          .n === total,
      'every message in PostgreSQL',
      { timeoutMs: 20_000 },
    );
    // Once each, with seqs 1..8 in every chat.
    const { rows } = await env.pool.query<{ chat_id: string; n: number; seqs: number; low: number; high: number }>(
      `SELECT chat_id, count(*)::int AS n, count(DISTINCT client_msg_id)::int AS seqs,
              min(seq)::int AS low, max(seq)::int AS high
         FROM messages WHERE sender_id = $1 GROUP BY chat_id`,
      [a.user.id],
    );
    expect(rows).toHaveLength(CHATS);
    for (const r of rows) expect(r).toMatchObject({ n: PER_CHAT * 2, seqs: PER_CHAT * 2, low: 1, high: PER_CHAT * 2 });
    await waitFor(
      async () =>
        (
          await env.pool.query(
            'SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2 AND last_read_seq >= 2',
            [read.id, b.user.id],
          )
        ).rowCount === 1,
      "b's read position in PostgreSQL",
    );

    // Every job the persist queues ever had, hand-ons included, was in its chat's shard; all done.
    await waitFor(async () => {
      const counts = await Promise.all(
        queues.sharded.persist.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')),
      );
      return counts.every((c) => Object.values(c).every((n) => n === 0));
    }, 'every persist job done');
    const all = await chatsByShard(queues.sharded.persist);
    expect(all.flat().length).toBeGreaterThan(CHATS * 2);
    all.forEach((ids, n) => ids.forEach((chatId) => expect(shardOf(chatId, SHARDS)).toBe(n)));
  });
});
