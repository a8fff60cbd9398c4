import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import { cappedExponentialDelay, QUEUES } from '../src/queues/definitions.js';
import type { Keys } from '../src/redis/keys.js';
import type { Scripts } from '../src/redis/scripts.js';
import type { MessageStore } from '../src/stores/message-store.js';
import { MicroBatcher } from './micro-batcher.js';

export interface PersistWorkerDeps {
  config: Config;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** Scripts on a command connection, for the post-insert bookkeeping. */
  scripts: Scripts;
  keys: Keys;
  messages: MessageStore;
  logger: Logger;
  /** Called after each batch with its size and how many rows were new (metrics, tests). */
  onBatch?: (size: number, inserted: number) => void;
}

/**
 * The persist worker: BullMQ hands it up to PERSIST_BATCH_SIZE jobs at once; each processor call
 * parks its message in the batcher, and one INSERT settles the whole batch. After the INSERT, the
 * chat's pending set forgets those seqs and the active list is trimmed to its bound (never below
 * the lowest still-pending seq), so a message leaves Redis only once PostgreSQL holds it.
 */
export function createPersistWorker(deps: PersistWorkerDeps) {
  const { config, scripts, keys } = deps;

  async function persistBatch(batch: Message[]): Promise<void> {
    const inserted = await deps.messages.insertBatch(batch);
    const seqsByChat = new Map<string, number[]>();
    for (const m of batch) {
      let seqs = seqsByChat.get(m.chatId);
      if (!seqs) seqsByChat.set(m.chatId, (seqs = []));
      seqs.push(m.seq);
    }
    await Promise.all(
      [...seqsByChat].map(([chatId, seqs]) =>
        scripts.markPersisted([keys.pending(chatId), keys.active(chatId)], config.ACTIVE_LIST_MAX, seqs),
      ),
    );
    deps.onBatch?.(batch.length, inserted);
  }

  const batcher = new MicroBatcher<Message>(persistBatch, config.PERSIST_BATCH_SIZE, config.PERSIST_BATCH_WAIT_MS);

  const worker = new Worker<Message>(QUEUES.persist, (job: Job<Message>) => batcher.add(job.data), {
    connection: deps.connection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.PERSIST_BATCH_SIZE,
    // A crashed worker's jobs count as stalled once its lock lapses; another worker redoes them.
    lockDuration: config.PERSIST_LOCK_MS,
    stalledInterval: config.PERSIST_LOCK_MS,
    settings: {
      backoffStrategy: (attemptsMade: number) => cappedExponentialDelay(attemptsMade, config.PERSIST_BACKOFF_MS, config.PERSIST_BACKOFF_CAP_MS),
    },
  });
  worker.on('failed', (job, err) =>
    deps.logger.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message }, 'persist job failed'),
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'persist worker error'));

  return {
    worker,
    /** Lets the batch under way finish, then stops taking jobs. */
    async close(): Promise<void> {
      const closing = worker.close();
      await batcher.drain();
      await closing;
    },
  };
}
