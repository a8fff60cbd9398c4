import { type Job, Worker } from 'bullmq';
import type { Logger } from '../src/logger.js';
import { backoffStrategy, type RetryPace } from '../src/queues/definitions.js';
import type { QueueShard } from '../src/queues/shards.js';
import type { RedisClient } from '../src/redis/client.js';
import { MicroBatcher } from './micro-batcher.js';

export interface BatchedWorkerOptions<T> {
  /** The queue's shards (queueShards in src/queues/shards.ts): one BullMQ Worker each, one batcher for all. */
  queues: readonly QueueShard[];
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  /** Jobs taken at once from each shard, which is also the largest batch. */
  batchSize: number;
  /** Longest a parked job waits for its batch to fill, in ms. */
  batchWaitMs: number;
  /** How failed jobs wait before their next attempt (the queue's own, defined beside its job options). */
  retry: RetryPace;
  /** How a dead worker's jobs are noticed and redone (BullMQ's defaults when absent). */
  stalls?: StallOptions;
  /** The item a job stands for; throwing fails that job alone. */
  toItem: (job: Job) => T;
  /** Settles a whole batch; throwing fails (and retries) every job in it. */
  flush: (items: T[]) => Promise<void>;
  logger: Logger;
}

/** BullMQ's stalled-job settings, for jobs that are safe to redo. */
export interface StallOptions {
  /** Job lock (ms), renewed every half of it while the job runs; it runs out when the worker dies. */
  lockMs: number;
  /** How often (ms) workers move jobs whose lock ran out back to the queue. */
  stalledIntervalMs: number;
  /** Stalls a job survives before it fails. */
  maxStalls: number;
}

/**
 * A BullMQ worker (one per shard of its queue) micro-batched inside the processor (BullMQ's own batches are a
 * paid feature): with concurrency N, each processor call parks its job, and one `flush` settles
 * the batch when it holds N jobs or the wait has passed. A failed flush rejects every parked job,
 * so each keeps its own retries (capped exponential backoff) and failed-set entry.
 */
export function createBatchedWorker<T>(o: BatchedWorkerOptions<T>) {
  const batcher = new MicroBatcher<T>(o.flush, o.batchSize, o.batchWaitMs);
  const workers = o.queues.map((queue) => {
    const worker = new Worker(queue.name, async (job: Job) => batcher.add(o.toItem(job)), {
      connection: o.connection,
      prefix: queue.prefix,
      concurrency: o.batchSize,
      ...(o.stalls
        ? {
            lockDuration: o.stalls.lockMs,
            stalledInterval: o.stalls.stalledIntervalMs,
            maxStalledCount: o.stalls.maxStalls,
          }
        : {}),
      settings: {
        backoffStrategy: backoffStrategy(o.retry),
      },
    });
    worker.on('failed', (job, err) =>
      o.logger.warn(
        { queue: queue.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message },
        'job failed',
      ),
    );
    worker.on('error', (err) => o.logger.warn({ queue: queue.name, err: err.message }, 'worker error'));
    return worker;
  });

  return {
    /** One per shard, in shard order. */
    workers,
    async waitUntilReady(): Promise<void> {
      await Promise.all(workers.map((w) => w.waitUntilReady()));
    },
    /** Lets the batch under way finish, then stops taking jobs. */
    async close(): Promise<void> {
      const closing = Promise.all(workers.map((w) => w.close()));
      await batcher.drain();
      await closing;
    },
  };
}
