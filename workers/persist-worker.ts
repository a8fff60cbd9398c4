import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import { type PersistJob, persistJobOptions, QUEUES } from '../src/queues/definitions.js';
import type { Keys } from '../src/redis/keys.js';
import type { Scripts } from '../src/redis/scripts.js';
import type { MessageStore } from '../src/stores/message-store.js';
import { createBatchedWorker } from './batched-worker.js';

export interface PersistWorkerDeps {
  config: Config;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** A command connection, and the scripts on it (reading pending messages, the bookkeeping after an INSERT). */
  redis: Pick<Redis, 'set'>;
  scripts: Scripts;
  keys: Keys;
  messages: MessageStore;
  logger: Logger;
  /** Called after each batch with its size and how many rows were new (metrics, tests). */
  onBatch?: (size: number, inserted: number) => void;
}

/** One chat's share of a batch. */
interface ChatBatch {
  chatId: string;
  messages: Message[];
  /** Pending seqs whose message Redis no longer holds (see pending-messages.lua). */
  orphans: string[];
}

/**
 * The persist worker. A persist job names a chat; BullMQ hands the worker up to
 * PERSIST_BATCH_SIZE of them at once, each processor call parks its chat, and after
 * PERSIST_BATCH_WAIT_MS one batch reads every parked chat's pending messages from Redis (one
 * script call each, pipelined) and writes them all with one INSERT. Then, per chat, the persisted
 * seqs leave the pending set, the active list is trimmed to its bound (never below the lowest
 * still-pending seq, so a message leaves Redis only once PostgreSQL holds it), and the chat's
 * persist ticket is released, or, when messages arrived meanwhile, kept for the chat's next job,
 * which this worker adds. A failed INSERT fails every job of the batch; each retries with backoff
 * and keeps its ticket.
 */
export function createPersistWorker(deps: PersistWorkerDeps) {
  const { config, scripts, keys, logger } = deps;
  const queue = new Queue<PersistJob>(QUEUES.persist, { connection: deps.connection, prefix: config.QUEUE_PREFIX });
  const jobOptions = persistJobOptions(config);

  /** Every parked chat's pending messages, oldest first, at most PERSIST_BATCH_SIZE in all. */
  async function collect(chatIds: string[]): Promise<ChatBatch[]> {
    const replies = await Promise.all(
      chatIds.map((chatId) => scripts.pendingMessages([keys.pending(chatId), keys.active(chatId)], config.PERSIST_BATCH_SIZE)),
    );
    let budget = config.PERSIST_BATCH_SIZE;
    return chatIds.map((chatId, i) => {
      const [found, orphans] = replies[i]!;
      // A chat left out by the budget keeps its ticket and gets its next job (mark-persisted.lua).
      const taken = found.slice(0, Math.max(0, budget));
      budget -= taken.length;
      return { chatId, messages: taken.map((json) => JSON.parse(json) as Message), orphans };
    });
  }

  async function persistBatch(parked: string[]): Promise<void> {
    const chats = await collect([...new Set(parked)]);
    const batch = chats.flatMap((c) => c.messages);
    const inserted = batch.length > 0 ? await deps.messages.insertBatch(batch) : 0;
    const next: string[] = [];
    await Promise.all(
      chats.map(async ({ chatId, messages, orphans }) => {
        if (orphans.length > 0) {
          logger.error({ chatId, seqs: orphans }, 'pending messages missing from Redis (data lost there); dropped from the pending set');
        }
        const [, more] = await scripts.markPersisted(
          [keys.pending(chatId), keys.active(chatId), keys.persistTicket(chatId)],
          config.ACTIVE_LIST_MAX,
          config.PERSIST_TICKET_MS,
          [...messages.map((m) => m.seq), ...orphans],
        );
        if (more === 1) next.push(chatId);
      }),
    );
    // Messages sent while this batch was written: their chats' next jobs. If this add fails the
    // batch's jobs fail and retry (their INSERT is idempotent), so the chats are not forgotten.
    if (next.length > 0) await queue.addBulk(next.map((chatId) => ({ name: 'persist', data: { chatId }, opts: jobOptions })));
    if (batch.length > 0) deps.onBatch?.(batch.length, inserted);
  }

  /** A batch that failed keeps its chats' tickets alive while its jobs wait for their retry. */
  async function keepTickets(parked: string[]): Promise<void> {
    await Promise.all(
      [...new Set(parked)].map((chatId) => deps.redis.set(keys.persistTicket(chatId), '1', 'PX', config.PERSIST_TICKET_MS).catch(() => undefined)),
    );
  }

  const batched = createBatchedWorker<string>({
    queue: QUEUES.persist,
    connection: deps.connection,
    prefix: config.QUEUE_PREFIX,
    batchSize: config.PERSIST_BATCH_SIZE,
    batchWaitMs: config.PERSIST_BATCH_WAIT_MS,
    backoffMs: config.PERSIST_BACKOFF_MS,
    backoffCapMs: config.PERSIST_BACKOFF_CAP_MS,
    lockMs: config.PERSIST_LOCK_MS,
    toItem: (job) => (job.data as PersistJob).chatId,
    flush: async (parked) => {
      try {
        await persistBatch(parked);
      } catch (err) {
        await keepTickets(parked);
        throw err;
      }
    },
    logger,
  });

  return {
    worker: batched.worker,
    async close(): Promise<void> {
      await batched.close();
      await queue.close();
    },
  };
}
