import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { createMessageLog, logSettingsOf } from '../../src/message-log/message-log.js';
import { persistJobOptions, QUEUES } from '../../src/queues/definitions.js';
import { bullPersistQueue } from '../../src/queues/persist-queue.js';
import { keyNodes } from '../../src/redis/client.js';
import { createKeys } from '../../src/redis/keys.js';
import { createMessageStore } from '../../src/stores/message-store.js';
import { type ArchiverConfig, createArchiver } from '../../workers/archiver.js';
import { startWorkers } from '../../workers/main.js';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

const LIST_MAX = 10;
const DAY_MS = 86_400_000;

let env: TestEnv;
let app: InProcess;
let persistQueue: Queue;
let stopWorkers: (() => Promise<void>) | undefined;
let a: TestUser;
let b: TestUser;
const keys = () => createKeys(env.config.REDIS_KEY_PREFIX);

beforeAll(async () => {
  // No schedule: every archive run in this file is one the test asked for.
  env = await createTestEnv({ ACTIVE_LIST_MAX: String(LIST_MAX), ARCHIVE_INTERVAL_MS: '0' });
  app = await startInProcess(env, { workers: false });
  persistQueue = new Queue(QUEUES.persist, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
  [a, b] = await Promise.all([app.api.newUser('arch_a'), app.api.newUser('arch_b')]);
});
afterAll(async () => {
  await stopWorkers?.();
  await persistQueue?.close();
  await app?.stop();
  await env?.cleanup();
});

/** An archiver on the test's Redis and database: the same function the archive job runs. */
function archiver(overrides: Partial<ArchiverConfig> = {}, now?: () => number) {
  const config = { ...env.config, ...overrides };
  return createArchiver({
    config,
    log: createMessageLog({
      redis: env.redis,
      prefix: config.REDIS_KEY_PREFIX,
      queue: bullPersistQueue([persistQueue], persistJobOptions(config)),
      settings: logSettingsOf(config),
    }),
    scanNodes: () => keyNodes(env.redis),
    messages: createMessageStore(env.pool),
    logger: createLogger('silent', 'test'),
    now,
  });
}

async function workersOn() {
  stopWorkers ??= await startWorkers(env.config, createLogger('silent', 'test'));
}
async function workersOff() {
  await stopWorkers?.();
  stopWorkers = undefined;
}

async function sendMany(chatId: string, n: number, label: string) {
  const seqs: number[] = [];
  for (let i = 1; i <= n; i++) {
    const r = await app.api.send(a.token, chatId, `${label} ${i}`);
    expect(r.status).toBe(201);
    seqs.push(r.body.message.seq);
  }
  return seqs;
}

const seqRange = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const pgCount = async (chatId: string) =>
  (await env.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE chat_id = $1', [chatId])).rows[0]!
    .n;

/** Every seq history returns, newest page first and then older ones, ascending. */
async function historySeqs(chatId: string): Promise<number[]> {
  const page = await app.api.history(b.token, chatId, 'limit=200');
  expect(page.status).toBe(200);
  expect(page.body.hasMore).toBe(false);
  return page.body.messages.map((m) => m.seq);
}

describe('archive', () => {
  it('trims nothing unpersisted while the worker is down, then trims to the bound once it caught up', async () => {
    const chat = await app.api.newChat(a, [b], 'flood');
    const k = keys();
    await sendMany(chat.id, 25, 'flood');
    expect(await env.redis.llen(k.active(chat.id))).toBe(25);

    const first = await archiver({ ARCHIVE_REPAIR_GRACE_MS: 0 }).run();
    expect(first.failedChats).toBe(0);
    expect(first.trimmed).toBe(0);
    // Their job is waiting (the chat's persist ticket says so), not lost: nothing to repair.
    expect(first.requeued).toBe(0);
    expect(await persistQueue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect(await env.redis.llen(k.active(chat.id))).toBe(25);
    expect(await pgCount(chat.id)).toBe(0);
    expect(await historySeqs(chat.id)).toEqual(seqRange(1, 25));
    // A key that holds unpersisted messages never expires.
    expect(await env.redis.pttl(k.active(chat.id))).toBe(-1);
    expect(await env.redis.pttl(k.seq(chat.id))).toBe(-1);

    await workersOn();
    await waitFor(
      async () => (await pgCount(chat.id)) === 25 && (await env.redis.exists(k.pending(chat.id))) === 0,
      'all 25 persisted',
    );
    const second = await archiver().run();
    expect(second.failedChats).toBe(0);
    expect(await env.redis.llen(k.active(chat.id))).toBe(LIST_MAX);
    const kept = await env.redis.lrange(k.active(chat.id), 0, -1);
    expect(kept.map((j) => JSON.parse(j).seq)).toEqual(seqRange(16, 25));
    expect(await historySeqs(chat.id)).toEqual(seqRange(1, 25));
  });

  it('trims by age only what PostgreSQL was checked to hold, and gives a lost message its job back', async () => {
    await workersOn();
    const chat = await app.api.newChat(a, [b], 'aged');
    const k = keys();
    await sendMany(chat.id, 5, 'aged');
    // Persisted, and let go by the worker that held the chat (its ticket released): no job is on its way.
    await waitFor(
      async () =>
        (await pgCount(chat.id)) === 5 && (await env.redis.exists(k.pending(chat.id), k.ticket(chat.id))) === 0,
      '5 persisted, chat let go',
    );
    // Redis believes seq 2 persisted; PostgreSQL lost it. The archive must not trust Redis.
    await env.pool.query('DELETE FROM messages WHERE chat_id = $1 AND seq = 2', [chat.id]);

    const twoDaysLater = () => Date.now() + 2 * DAY_MS;
    const run = await archiver({}, twoDaysLater).run();
    expect(run.failedChats).toBe(0);
    const left = (await env.redis.lrange(k.active(chat.id), 0, -1)).map((j) => JSON.parse(j).seq);
    // Seq 1 was old and checked; seq 2 is missing from PostgreSQL, so it and everything after stay.
    expect(left).toEqual([2, 3, 4, 5]);
    expect(run.requeued).toBe(1);
    // Not whole in PostgreSQL: no TTL yet.
    expect(await env.redis.pttl(k.active(chat.id))).toBe(-1);

    // Written, and its pending seq and ticket cleared (the archiver stops below a pending seq).
    await waitFor(
      async () =>
        (await pgCount(chat.id)) === 5 && (await env.redis.exists(k.pending(chat.id), k.ticket(chat.id))) === 0,
      'seq 2 persisted again by its new job',
    );
    const again = await archiver({}, twoDaysLater).run();
    expect(again.failedChats).toBe(0);
    // Everything is older than ACTIVE_LIST_MAX_AGE_S and in PostgreSQL: the list is gone.
    expect(await env.redis.exists(k.active(chat.id))).toBe(0);
    expect(await historySeqs(chat.id)).toEqual(seqRange(1, 5));
    expect(await env.redis.pttl(k.seq(chat.id))).toBeGreaterThan(0);
  });

  it('repairs a persistence job deleted by hand once it is older than the grace period and its ticket ran out', async () => {
    await workersOff();
    const chat = await app.api.newChat(a, [b], 'lost job');
    const k = keys();
    const [seq] = await sendMany(chat.id, 1, 'lost');
    const listed = await env.redis.lrange(k.active(chat.id), 0, -1);
    const id = JSON.parse(listed[0]!).id as string;
    const jobsOfChat = async () => (await persistQueue.getWaiting()).filter((j) => j.data.chatId === chat.id);
    const [job] = await jobsOfChat();
    expect(job).toBeDefined();
    await job!.remove();
    expect(await jobsOfChat()).toEqual([]);

    // While the chat's persist ticket lasts, the sweep takes a job to be on its way.
    const ticketHeld = await archiver({ ARCHIVE_REPAIR_GRACE_MS: 0 }).run();
    expect(ticketHeld.requeued).toBe(0);
    expect(await jobsOfChat()).toEqual([]);

    // The ticket runs out (PERSIST_TICKET_MS; here: deleted). Within the grace period the sweep
    // still leaves the message alone: its job may simply not be added yet.
    await env.redis.del(k.ticket(chat.id));
    const early = await archiver({ ARCHIVE_REPAIR_GRACE_MS: 60_000 }).run();
    expect(early.requeued).toBe(0);
    expect(await jobsOfChat()).toEqual([]);

    const sweep = await archiver({ ARCHIVE_REPAIR_GRACE_MS: 0 }).run();
    expect(sweep.requeued).toBe(1);
    const [repaired] = await jobsOfChat();
    expect(repaired?.data).toEqual({ chatId: chat.id });
    expect(repaired?.opts.attempts).toBe(env.config.PERSIST_ATTEMPTS);
    // The sweep took the ticket for its job: a second run adds no other.
    expect((await archiver({ ARCHIVE_REPAIR_GRACE_MS: 0 }).run()).requeued).toBe(0);

    await workersOn();
    await waitFor(async () => (await pgCount(chat.id)) === 1, 'the repaired message in PostgreSQL');
    const { rows } = await env.pool.query('SELECT id, seq, body FROM messages WHERE chat_id = $1', [chat.id]);
    expect(rows).toEqual([{ id, seq, body: 'lost 1' }]);
    await waitFor(
      async () => (await env.redis.exists(k.ticket(chat.id), k.pending(chat.id))) === 0,
      'ticket released, nothing pending',
    );
  });

  it('lets an idle, fully persisted chat expire, and its seq counter resumes once gone', async () => {
    await workersOn();
    const chat = await app.api.newChat(a, [b], 'idle');
    const k = keys();
    await sendMany(chat.id, 3, 'idle');
    await waitFor(async () => (await env.redis.exists(k.pending(chat.id))) === 0, 'everything persisted');

    const run = await archiver().run();
    expect(run.expiring).toBeGreaterThanOrEqual(1);
    for (const key of [k.active(chat.id), k.seq(chat.id)]) {
      const ttl = await env.redis.ttl(key);
      expect(ttl).toBeGreaterThan(env.config.ACTIVE_TTL_S - 60);
      expect(ttl).toBeLessThanOrEqual(env.config.ACTIVE_TTL_S);
    }
    // A later run does not push the expiry back: the clock runs from when the chat went idle.
    // (Time passing is played by shortening the TTLs by hand.)
    for (const key of [k.active(chat.id), k.seq(chat.id)]) await env.redis.expire(key, 100);
    await archiver().run();
    for (const key of [k.active(chat.id), k.seq(chat.id)]) expect(await env.redis.ttl(key)).toBeLessThanOrEqual(100);

    // A send makes the keys permanent again, in the same atomic step that appends.
    const fourth = await app.api.send(a.token, chat.id, 'awake');
    expect(fourth.body.message.seq).toBe(4);
    expect(await env.redis.pttl(k.active(chat.id))).toBe(-1);
    expect(await env.redis.pttl(k.seq(chat.id))).toBe(-1);
    await waitFor(
      async () => (await pgCount(chat.id)) === 4 && (await env.redis.exists(k.pending(chat.id))) === 0,
      'seq 4 persisted',
    );

    // The counter expires (here: is deleted): the next send re-seeds it from PostgreSQL.
    await env.redis.del(k.seq(chat.id));
    expect((await app.api.send(a.token, chat.id, 'after the counter expired')).body.message.seq).toBe(5);
    // The whole chat expires: counter and list gone, PostgreSQL alone remembers.
    await waitFor(
      async () => (await pgCount(chat.id)) === 5 && (await env.redis.exists(k.pending(chat.id))) === 0,
      'seq 5 persisted',
    );
    await env.redis.del(k.seq(chat.id), k.active(chat.id));
    expect((await app.api.send(a.token, chat.id, 'after the chat expired')).body.message.seq).toBe(6);
    expect(await historySeqs(chat.id)).toEqual(seqRange(1, 6));
  });
});
