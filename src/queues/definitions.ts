import type { JobsOptions } from 'bullmq';
import type { Config } from '../config.js';

/**
 * The queues the api produces into and workers consume (shared by src/ and workers/).
 * Every Queue, Worker and Bull Board adapter uses config.QUEUE_PREFIX, hash-tagged for Cluster.
 */
export const QUEUES = {
  /** One job per accepted message (jobId = message id), inserted in micro-batches. */
  persist: 'persist',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Retry delays double from PERSIST_BACKOFF_MS and stop growing here. */
export const PERSIST_BACKOFF_CAP_MS = 30_000;

/**
 * Persistence jobs retry with capped exponential backoff (the worker's `backoffStrategy`), so
 * with the default 1000 attempts a message is retried for hours before it is given up on.
 */
export function persistJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.PERSIST_ATTEMPTS,
    backoff: { type: 'capped-exponential', delay: config.PERSIST_BACKOFF_MS },
    removeOnComplete: { count: config.QUEUE_KEEP_COMPLETED },
    removeOnFail: { count: config.QUEUE_KEEP_FAILED },
  };
}

/** Delay before retry number `attemptsMade` (1-based): base * 2^(n-1), capped. */
export function cappedExponentialDelay(attemptsMade: number, baseMs: number, capMs = PERSIST_BACKOFF_CAP_MS): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attemptsMade - 1, 30)));
}
