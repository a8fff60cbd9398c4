import type { Job, JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { Config } from '../config.js';
import { idSchema, seqSchema, userIdSchema } from '../domain/schemas.js';
import type { LastSeen } from '../stores/last-seen-store.js';
import type { ReadPosition } from '../stores/read-store.js';
import type { RetryPace } from './definitions.js';
import { parseJobData, requireJobName } from './job-data.js';

/**
 * Jobs of the `receipts` queue: state that Redis holds at once and PostgreSQL a moment later,
 * written in batches by workers/receipts-worker.ts. Both writes only move forward, so jobs need
 * no ids: a duplicate or a late retry changes nothing.
 */
export const RECEIPT_JOBS = {
  /** A member's read position moved (data: ReadPosition). */
  read: 'read',
  /** A user went offline (data: LastSeen). */
  seen: 'seen',
} as const;

export type ReceiptJob =
  { name: typeof RECEIPT_JOBS.read; data: ReadPosition } | { name: typeof RECEIPT_JOBS.seen; data: LastSeen };

/**
 * The data each kind must carry. Chat ids are UUIDs and user ids opaque ids (userIdSchema)
 * because the batch statements bind them as `uuid[]` and `text[]`: one malformed id would fail the
 * whole batch, good jobs included.
 */
const readSchema: z.ZodType<ReadPosition> = z.object({ chatId: idSchema, userId: userIdSchema, seq: seqSchema });
const seenSchema: z.ZodType<LastSeen> = z.object({ userId: userIdSchema, at: z.iso.datetime() });

/** A receipts job as the worker may batch it; throws UnrecoverableError for anything else. */
export function parseReceiptJob(job: Pick<Job, 'id' | 'name' | 'data'>): ReceiptJob {
  requireJobName('receipts', job, Object.values(RECEIPT_JOBS));
  return job.name === RECEIPT_JOBS.read
    ? { name: RECEIPT_JOBS.read, data: parseJobData('receipts', readSchema, job) }
    : { name: RECEIPT_JOBS.seen, data: parseJobData('receipts', seenSchema, job) };
}

/**
 * The receipts queue's pace: that of the persist queue (PERSIST_BACKOFF_MS doubling up to
 * PERSIST_BACKOFF_CAP_MS), since both wait for the same PostgreSQL to come back; the operator
 * sets how hard a returning PostgreSQL is pressed once, for every write that retries.
 */
export function receiptsRetryPace(config: Pick<Config, 'PERSIST_BACKOFF_MS' | 'PERSIST_BACKOFF_CAP_MS'>): RetryPace {
  return { baseMs: config.PERSIST_BACKOFF_MS, capMs: config.PERSIST_BACKOFF_CAP_MS };
}

/**
 * About an hour of retries at the default pace's 10 s cap: a receipt is worth keeping through a
 * PostgreSQL outage, not for ever, since Redis serves the live value meanwhile and a member's
 * next read carries the larger position anyway.
 */
const RECEIPT_ATTEMPTS = 360;
/** Failed receipts kept for Bull Board; receipts are many and small, so fewer than persist jobs. */
const RECEIPTS_KEEP_FAILED = 1000;

/**
 * The receipts queue's job options (read positions and last-seen times): retried at the
 * receipts pace; never kept once written (there is one per read, and nobody looks at them), and
 * a bounded number kept when given up on.
 */
export function receiptJobOptions(config: Pick<Config, 'PERSIST_BACKOFF_MS' | 'PERSIST_BACKOFF_CAP_MS'>): JobsOptions {
  return {
    attempts: RECEIPT_ATTEMPTS,
    backoff: { type: 'capped-exponential', delay: receiptsRetryPace(config).baseMs },
    removeOnComplete: true,
    removeOnFail: { count: RECEIPTS_KEEP_FAILED },
  };
}
