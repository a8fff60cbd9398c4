import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import type { Claim, MessageLog, PendingChat } from '../src/message-log/message-log.js';
import { persistJobSchema, QUEUES } from '../src/queues/definitions.js';
import { parseJobData } from '../src/queues/job-data.js';
import type { InsertResult } from '../src/stores/message-store.js';
import { createBatchedWorker } from './batched-worker.js';

export interface PersistWorkerDeps {
  config: Pick<
    Config,
    'QUEUE_PREFIX' | 'PERSIST_BATCH_SIZE' | 'PERSIST_BATCH_WAIT_MS' | 'PERSIST_BACKOFF_MS' | 'PERSIST_BACKOFF_CAP_MS' | 'PERSIST_LOCK_MS' | 'PERSIST_STALLED_MS' | 'PERSIST_MAX_STALLS'
  >;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** The message log on a worker command connection, with the persist queue (hand-on jobs). */
  log: Pick<MessageLog, 'readPending' | 'markPersisted' | 'enqueue' | 'keepTickets' | 'drop'>;
  /** The batch INSERT (MessageStore.insertBatch, wrapped with the statements that follow it). */
  insertBatch: (messages: Message[]) => Promise<InsertResult>;
  logger: Logger;
  /** Called after each batch with its size and how many rows were new (metrics, tests). */
  onBatch?: (size: number, inserted: number) => void;
  /**
   * Test seam: awaited after a batch's INSERT and bookkeeping, just before the chats' next jobs
   * are added (the window in which a worker that dies holds only short claims on their tickets).
   */
  beforeHandOn?: (chatIds: string[]) => Promise<void>;
}

/** Batches one flush writes back to back for chats with a backlog, before their jobs requeue. */
const BACKLOG_ROUNDS = 10;

/**
 * The persist worker. A persist job names a chat; BullMQ hands the worker up to
 * PERSIST_BATCH_SIZE of them at once, each processor call parks its chat, and after
 * PERSIST_BATCH_WAIT_MS one batch reads every parked chat's pending messages from the message log
 * and writes them all with one INSERT. Then, per chat, the log marks them persisted and hands the
 * chat's ticket on (released, or claimed for the chat's next job, which this worker enqueues: the
 * persist-ticket protocol, src/message-log/persist-ticket.ts). A failed INSERT fails every job of
 * the batch; each retries with backoff and keeps its ticket.
 */
export function createPersistWorker(deps: PersistWorkerDeps) {
  const { config, log, logger } = deps;

  /**
   * One INSERT for the chats' pending messages (an equal share of PERSIST_BATCH_SIZE each, so it
   * stays within it), then their bookkeeping; resolves with the claims of chats that still have
   * messages pending, split into those that filled their share (a backlog) and the rest.
   */
  async function writeOnce(chatIds: string[]): Promise<{ backlog: Claim[]; more: Claim[] }> {
    const share = Math.max(1, Math.floor(config.PERSIST_BATCH_SIZE / chatIds.length));
    const chats = await log.readPending(chatIds, share);
    const batch = chats.flatMap((c) => c.messages.map((m) => m.message));
    const { inserted, superseded } = await deps.insertBatch(batch);
    const backlog: Claim[] = [];
    const more: Claim[] = [];
    await Promise.all(
      chats.map(async ({ chatId, messages, orphans }: PendingChat) => {
        if (orphans.length > 0) {
          logger.error({ chatId, seqs: orphans }, 'pending messages missing from Redis (data lost there); dropped from the pending set');
        }
        const { claim } = await log.markPersisted(chatId, [...messages.map((m) => m.message.seq), ...orphans]);
        if (claim) (messages.length >= share ? backlog : more).push(claim);
      }),
    );
    // Never acked (see MessageStore.insertBatch): they leave Redis too, so history does not show them.
    if (superseded.length > 0) {
      const jsonOf = new Map(chats.flatMap((c) => c.messages.map((m) => [m.message, m.json] as const)));
      await Promise.all(superseded.map((m) => log.drop(m.chatId, jsonOf.get(m)!)));
      logger.warn({ messages: superseded.map((m) => ({ chatId: m.chatId, seq: m.seq })) }, 'superseded by their retry stored while Redis was down');
    }
    if (batch.length > 0) deps.onBatch?.(batch.length, inserted);
    return { backlog, more };
  }

  async function persistBatch(parked: string[]): Promise<void> {
    let chatIds = [...new Set(parked)];
    const next: Claim[] = [];
    // A backlog (after an outage, or a burst) is written at once, batch after batch, rather than
    // waiting PERSIST_BATCH_WAIT_MS for each; a few rounds, then its jobs go back to the queue.
    for (let round = 1; chatIds.length > 0; round++) {
      const { backlog, more } = await writeOnce(chatIds);
      next.push(...more);
      if (round === BACKLOG_ROUNDS) next.push(...backlog);
      chatIds = round === BACKLOG_ROUNDS ? [] : backlog.map((c) => c.chatId);
    }
    if (next.length === 0) return;
    await deps.beforeHandOn?.(next.map((c) => c.chatId));
    // The chats' next jobs, on the claims the log took. If this add fails the batch's jobs fail
    // and retry (their INSERT is idempotent), so the chats are not forgotten.
    await log.enqueue(next);
  }

  const batched = createBatchedWorker<string>({
    queue: QUEUES.persist,
    connection: deps.connection,
    prefix: config.QUEUE_PREFIX,
    batchSize: config.PERSIST_BATCH_SIZE,
    batchWaitMs: config.PERSIST_BATCH_WAIT_MS,
    backoffMs: config.PERSIST_BACKOFF_MS,
    backoffCapMs: config.PERSIST_BACKOFF_CAP_MS,
    // Short locks and frequent checks: a dead worker's chats are written again within seconds.
    stalls: { lockMs: config.PERSIST_LOCK_MS, stalledIntervalMs: config.PERSIST_STALLED_MS, maxStalls: config.PERSIST_MAX_STALLS },
    // Garbage fails its own job, unretried; the batch goes on without it.
    toItem: (job) => parseJobData(QUEUES.persist, persistJobSchema, job).chatId,
    flush: async (parked) => {
      try {
        await persistBatch(parked);
      } catch (err) {
        // A batch that failed keeps its chats' tickets alive while its jobs wait for their retry.
        await log.keepTickets([...new Set(parked)]);
        throw err;
      }
    },
    logger,
  });

  return {
    worker: batched.worker,
    close: () => batched.close(),
  };
}
