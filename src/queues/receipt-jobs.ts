import type { LastSeen } from '../stores/last-seen-store.js';
import type { ReadPosition } from '../stores/read-store.js';

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

export type ReceiptJob = { name: typeof RECEIPT_JOBS.read; data: ReadPosition } | { name: typeof RECEIPT_JOBS.seen; data: LastSeen };

/** The presence queue's one scheduled job: the sweep for users whose connections expired. */
export const PRESENCE_SWEEP = { schedulerId: 'presence-sweep', name: 'sweep' } as const;
