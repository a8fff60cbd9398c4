import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { QUEUES } from '../src/queues/definitions.js';
import { parseReceiptJob, RECEIPT_JOBS, type ReceiptJob, receiptsRetryPace } from '../src/queues/receipt-jobs.js';
import { queueShards } from '../src/queues/shards.js';
import type { RedisClient } from '../src/redis/client.js';
import type { LastSeen, LastSeenStore } from '../src/stores/last-seen-store.js';
import type { ReadPosition, ReadStore } from '../src/stores/read-store.js';
import { createBatchedWorker } from './batched-worker.js';

export interface ReceiptsWorkerDeps {
  config: Pick<
    Config,
    | 'QUEUE_PREFIX'
    | 'PERSIST_SHARDS'
    | 'RECEIPTS_BATCH_SIZE'
    | 'RECEIPTS_BATCH_WAIT_MS'
    | 'PERSIST_BACKOFF_MS'
    | 'PERSIST_BACKOFF_CAP_MS'
  >;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  reads: ReadStore;
  lastSeen: LastSeenStore;
  logger: Logger;
}

/**
 * Writes read positions and last-seen times to PostgreSQL, micro-batched like the persist
 * worker: each processor call parks its job, and one statement per kind settles the batch. Both
 * statements only move values forward, so retries and reordering are harmless.
 */
export function createReceiptsWorker(deps: ReceiptsWorkerDeps) {
  const { config } = deps;

  async function writeBatch(batch: ReceiptJob[]): Promise<void> {
    const reads: ReadPosition[] = [];
    const seen: LastSeen[] = [];
    for (const job of batch) {
      if (job.name === RECEIPT_JOBS.read) reads.push(job.data);
      else seen.push(job.data);
    }
    await Promise.all([deps.reads.advanceBatch(reads), deps.lastSeen.recordBatch(seen)]);
  }

  return createBatchedWorker<ReceiptJob>({
    // Every shard of `receipts` (PERSIST_SHARDS), one batch across them.
    queues: queueShards(QUEUES.receipts, config.QUEUE_PREFIX, config.PERSIST_SHARDS),
    connection: deps.connection,
    batchSize: config.RECEIPTS_BATCH_SIZE,
    batchWaitMs: config.RECEIPTS_BATCH_WAIT_MS,
    retry: receiptsRetryPace(config),
    // Garbage fails its own job, unretried, before it could fail the batch's statements.
    toItem: parseReceiptJob,
    flush: writeBatch,
    logger: deps.logger,
  });
}
