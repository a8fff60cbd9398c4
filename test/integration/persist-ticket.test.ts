import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import type { Message } from '../../src/domain/types.js';
import { createRedis } from '../../src/infra/clients.js';
import { RedisCircuit } from '../../src/infra/redis-circuit.js';
import { createLogger } from '../../src/logger.js';
import { persistJobOptions, type PersistJob, QUEUES } from '../../src/queues/definitions.js';
import { createKeys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import type { DirectMessageStore } from '../../src/stores/direct-message-store.js';
import { createMessageStore, type MessageStore } from '../../src/stores/message-store.js';
import type { MembershipService } from '../../src/services/membership-service.js';
import { createSendService } from '../../src/services/send-service.js';
import type { SeqGuard } from '../../src/services/seq-guard.js';
import { createPersistWorker } from '../../workers/persist-worker.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The persist ticket: one persist job per chat and batch. The send service and the persist
 * worker run here on the real Redis and PostgreSQL; only the queue's `add` (a function seam) is
 * made to fail where the test needs a lost job add.
 */
let env: TestEnv;
let queue: Queue<PersistJob>;
let connection: Redis;
const closers: (() => Promise<unknown>)[] = [];
const keys = () => createKeys(env.config.REDIS_KEY_PREFIX);
const logger = createLogger('silent', 'test');

beforeAll(async () => {
  env = await createTestEnv({ PERSIST_BATCH_WAIT_MS: '5', PERSIST_TICKET_CLAIM_MS: '300' });
  connection = createRedis(env.config, 'queue', 'test-queue');
  queue = new Queue<PersistJob>(QUEUES.persist, { connection, prefix: env.config.QUEUE_PREFIX });
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await queue?.close();
  connection?.disconnect();
  await env?.cleanup();
});

/** A chat in Redis (member set and counter) whose one member is `sender`. */
async function chatWith(sender: string): Promise<string> {
  const chatId = randomUUID();
  await env.redis.sadd(keys().members(chatId), '', sender);
  await env.redis.set(keys().seq(chatId), 0);
  return chatId;
}

async function sendService(persistQueue: Pick<Queue<PersistJob>, 'add'>) {
  const redis = createRedis(env.config, 'command', 'test-send');
  closers.push(() => redis.quit());
  // A command connection has no offline queue: wait until it is up.
  await new Promise((resolve) => redis.once('ready', resolve));
  return createSendService({
    scripts: createScripts(redis),
    keys: keys(),
    redis,
    persistQueue: persistQueue as Queue<PersistJob>,
    persistJobOptions: persistJobOptions(env.config),
    persistTicketMs: env.config.PERSIST_TICKET_MS,
    persistTicketClaimMs: env.config.PERSIST_TICKET_CLAIM_MS,
    // Seams the sends below never reach: the chat's members and counter are already in Redis.
    membership: {} as MembershipService,
    circuit: new RedisCircuit({ redis, logger, probeMs: 1000, failureThreshold: 3 }),
    direct: {} as DirectMessageStore,
    seqGuard: {} as SeqGuard,
    idempotencyTtlSeconds: 60,
    readsTtlSeconds: 60,
    findSent: createMessageStore(env.pool).findByClientMsgId,
  });
}

/** The real persist worker, on a message store whose INSERT the test may hold back. */
function persistWorker(messages: MessageStore, overrides: Partial<Config> = {}, onBatch?: (size: number) => void) {
  const redis = createRedis(env.config, 'command', 'test-worker-cmd');
  const worker = createPersistWorker({
    config: { ...env.config, ...overrides },
    onBatch,
    connection: createRedis(env.config, 'queue', 'test-worker'),
    redis,
    scripts: createScripts(redis),
    keys: keys(),
    messages,
    logger,
  });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= worker.close().then(async () => void (await redis.quit())));
  closers.push(close);
  return { close };
}

const stored = async (chatId: string) =>
  (await env.pool.query<{ seq: number }>('SELECT seq FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId])).rows.map((r) => r.seq);
const waitingFor = async (chatId: string) => (await queue.getWaiting()).filter((j) => j.data.chatId === chatId).length;

describe('persist ticket', () => {
  it('gives a burst of sends to one chat one persist job, and keeps the chat on its way while a batch is written', async () => {
    const sender = randomUUID();
    const chatId = await chatWith(sender);
    const sends = await sendService(queue);
    for (let i = 0; i < 20; i++) await sends.send({ chatId, senderId: sender, body: `burst ${i}`, clientMsgId: `b${i}` });
    expect(await waitingFor(chatId)).toBe(1);
    expect(await env.redis.zcard(keys().pending(chatId))).toBe(20);
    // Once the job was added, the short claim became the long ticket.
    await waitFor(async () => (await env.redis.pttl(keys().persistTicket(chatId))) > env.config.PERSIST_TICKET_CLAIM_MS, 'the claim confirmed');

    // The first INSERT is held back; messages sent meanwhile ride on no job of their own.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstBatch: number[] | undefined;
    const real = createMessageStore(env.pool);
    const worker = persistWorker({
      ...real,
      async insertBatch(batch: Message[]) {
        if (!firstBatch) {
          firstBatch = batch.map((m) => m.seq);
          await held;
        }
        return real.insertBatch(batch);
      },
    });
    await waitFor(async () => firstBatch !== undefined, 'the first batch under way');
    expect(firstBatch).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (let i = 20; i < 25; i++) await sends.send({ chatId, senderId: sender, body: `late ${i}`, clientMsgId: `b${i}` });
    expect(await waitingFor(chatId)).toBe(0);
    release();

    // The batch finds them pending, keeps the ticket and adds the chat's next job itself.
    await waitFor(async () => (await stored(chatId)).length === 25, 'all 25 in PostgreSQL');
    expect(await stored(chatId)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    await waitFor(async () => (await env.redis.exists(keys().persistTicket(chatId), keys().pending(chatId))) === 0, 'ticket released, nothing pending');

    // The next send finds no ticket: it takes it and adds a job.
    await sends.send({ chatId, senderId: sender, body: 'after', clientMsgId: 'after' });
    await waitFor(async () => (await stored(chatId)).length === 26, 'the next message in PostgreSQL');
    await worker.close();
  });

  it('hands the ticket back when the job add fails, so that the retry with the same clientMsgId adds it', async () => {
    const sender = randomUUID();
    const chatId = await chatWith(sender);
    const failing = await sendService({ add: async () => Promise.reject(new Error('queue unreachable')) });
    await expect(failing.send({ chatId, senderId: sender, body: 'once', clientMsgId: 'c1' })).rejects.toMatchObject({ code: 'unavailable' });
    // Accepted into Redis, pending, and no ticket left behind without a job.
    expect(await env.redis.zrange(keys().pending(chatId), '0', '-1')).toEqual(['1']);
    expect(await env.redis.exists(keys().persistTicket(chatId))).toBe(0);

    const retry = await (await sendService(queue)).send({ chatId, senderId: sender, body: 'once', clientMsgId: 'c1' });
    expect(retry).toMatchObject({ duplicate: true, message: { seq: 1, body: 'once' } });
    expect(await waitingFor(chatId)).toBe(1);
    // A further retry while that job waits adds nothing.
    await (await sendService(queue)).send({ chatId, senderId: sender, body: 'once', clientMsgId: 'c1' });
    expect(await waitingFor(chatId)).toBe(1);
  });

  it('lets the claim of an api that died before its job add run out; the next send adds the job', async () => {
    const sender = randomUUID();
    const chatId = await chatWith(sender);
    const ticket = keys().persistTicket(chatId);
    // The job add never answers: the api died between its script and its add.
    const dying = await sendService({ add: () => new Promise<never>(() => undefined) });
    void dying.send({ chatId, senderId: sender, body: 'orphaned', clientMsgId: 'd1' });
    await waitFor(async () => (await env.redis.zcard(keys().pending(chatId))) === 1, 'accepted into Redis');
    expect(await env.redis.pttl(ticket)).toBeLessThanOrEqual(env.config.PERSIST_TICKET_CLAIM_MS);
    expect(await waitingFor(chatId)).toBe(0);

    await waitFor(async () => (await env.redis.exists(ticket)) === 0, 'the claim ran out');
    await (await sendService(queue)).send({ chatId, senderId: sender, body: 'next', clientMsgId: 'd2' });
    expect(await waitingFor(chatId)).toBe(1);
    await waitFor(async () => (await env.redis.pttl(ticket)) > env.config.PERSIST_TICKET_CLAIM_MS, 'the new claim confirmed');

    // That one job writes both messages.
    const worker = persistWorker(createMessageStore(env.pool));
    await waitFor(async () => (await stored(chatId)).length === 2, 'both messages in PostgreSQL');
    expect(await stored(chatId)).toEqual([1, 2]);
    await worker.close();
  });

  it('writes a backlog batch after batch, each within PERSIST_BATCH_SIZE, from one job', async () => {
    const sender = randomUUID();
    const chatId = await chatWith(sender);
    const sends = await sendService(queue);
    for (let i = 0; i < 35; i++) await sends.send({ chatId, senderId: sender, body: `backlog ${i}`, clientMsgId: `k${i}` });
    expect(await waitingFor(chatId)).toBe(1);

    const batches: number[] = [];
    const worker = persistWorker(createMessageStore(env.pool), { PERSIST_BATCH_SIZE: 10 }, (size) => batches.push(size));
    await waitFor(async () => (await stored(chatId)).length === 35, 'the backlog in PostgreSQL');
    expect(await stored(chatId)).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));
    expect(batches).toEqual([10, 10, 10, 5]);
    await waitFor(async () => (await env.redis.exists(keys().persistTicket(chatId), keys().pending(chatId))) === 0, 'ticket released');
    await worker.close();
  });
});
