import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import { QUEUES } from '../src/queues/definitions.js';
import type { Keys } from '../src/redis/keys.js';
import type { Scripts } from '../src/redis/scripts.js';
import type { MessageStore } from '../src/stores/message-store.js';
import { createBatchedWorker } from './batched-worker.js';

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

  return createBatchedWorker<Message>({
    queue: QUEUES.persist,
    connection: deps.connection,
    prefix: config.QUEUE_PREFIX,
    batchSize: config.PERSIST_BATCH_SIZE,
    batchWaitMs: config.PERSIST_BATCH_WAIT_MS,
    backoffMs: config.PERSIST_BACKOFF_MS,
    backoffCapMs: config.PERSIST_BACKOFF_CAP_MS,
    lockMs: config.PERSIST_LOCK_MS,
    toItem: (job) => job.data as Message,
    flush: persistBatch,
    logger: deps.logger,
  });
}
