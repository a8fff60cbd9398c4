import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { Config } from '../config.js';
import { idSchema } from '../domain/schemas.js';

/**
 * The queues the api produces into and workers consume (shared by src/ and workers/).
 * Every Queue, Worker and Bull Board adapter uses config.QUEUE_PREFIX, hash-tagged for Cluster.
 */
export const QUEUES = {
  /**
   * Persist jobs (PersistJob): one per chat and batch, not per message. A chat's persist ticket
   * (src/message-log/persist-ticket.ts) makes sure that while its messages wait there is one on the way.
   */
  persist: 'persist',
  /** Periodic (a job scheduler): trims active lists, sets TTLs, re-enqueues lost persistence jobs. */
  archive: 'archive',
  /** Read positions and last-seen times for PostgreSQL, written in micro-batches (receipt-jobs.ts). */
  receipts: 'receipts',
  /** Periodic (a job scheduler): the presence sweep for users whose connections stopped heartbeating. */
  presence: 'presence',
  /** Periodic (a job scheduler): deletes expired sessions from PostgreSQL in batches. */
  sessionPurge: 'session-purge',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * A persist job: "write this chat's pending messages". The messages themselves stay in Redis
 * (the active list, and the chat's pending set of seqs PostgreSQL may lack) until PostgreSQL holds
 * them, so a job carries no message data, and a lost or repeated job costs nothing but a lookup.
 */
export interface PersistJob {
  chatId: string;
}

/** What the persist worker accepts (anything else fails its job at once, see job-data.ts). */
export const persistJobSchema: z.ZodType<PersistJob> = z.object({ chatId: idSchema });

/**
 * Persistence jobs retry with capped exponential backoff (the worker's `backoffStrategy`), so
 * with the default 1000 attempts and 10 s cap a message is retried for hours before it is given up on.
 */
export function persistJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.PERSIST_ATTEMPTS,
    backoff: { type: 'capped-exponential', delay: config.PERSIST_BACKOFF_MS },
    removeOnComplete: config.QUEUE_KEEP_COMPLETED > 0 ? { count: config.QUEUE_KEEP_COMPLETED } : true,
    removeOnFail: { count: config.QUEUE_KEEP_FAILED },
  };
}

/** Delay before retry number `attemptsMade` (1-based): base * 2^(n-1), capped. */
export function cappedExponentialDelay(attemptsMade: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attemptsMade - 1, 30)));
}
