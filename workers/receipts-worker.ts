import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { cappedExponentialDelay, QUEUES } from '../src/queues/definitions.js';
import { RECEIPT_JOBS, type ReceiptJob } from '../src/queues/receipt-jobs.js';
import type { LastSeen, LastSeenStore } from '../src/stores/last-seen-store.js';
import type { ReadPosition, ReadStore } from '../src/stores/read-store.js';
import { MicroBatcher } from './micro-batcher.js';

export interface ReceiptsWorkerDeps {
  config: Config;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
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

  const batcher = new MicroBatcher<ReceiptJob>(writeBatch, config.RECEIPTS_BATCH_SIZE, config.RECEIPTS_BATCH_WAIT_MS);

  const worker = new Worker(
    QUEUES.receipts,
    async (job: Job) => {
      if (job.name !== RECEIPT_JOBS.read && job.name !== RECEIPT_JOBS.seen) throw new Error(`unknown receipts job: ${job.name}`);
      return batcher.add({ name: job.name, data: job.data } as ReceiptJob);
    },
    {
      connection: deps.connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.RECEIPTS_BATCH_SIZE,
      settings: {
        backoffStrategy: (attemptsMade: number) => cappedExponentialDelay(attemptsMade, config.PERSIST_BACKOFF_MS, config.PERSIST_BACKOFF_CAP_MS),
      },
    },
  );
  worker.on('failed', (job, err) =>
    deps.logger.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message }, 'receipts job failed'),
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'receipts worker error'));

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
