import { type Job, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import { errorText } from '../src/domain/errors.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import type { MessageLog, PersistedChat } from '../src/message-log/message-log.js';
import { backoffStrategy, persistJobSchema, persistRetryPace, QUEUES } from '../src/queues/definitions.js';
import { parseJobData } from '../src/queues/job-data.js';
import { queueShards } from '../src/queues/shards.js';
import type { RedisClient } from '../src/redis/client.js';
import type { ChatStore } from '../src/stores/chat-store.js';
import type { InsertResult } from '../src/stores/message-store.js';
import type { ReadPosition, ReadStore } from '../src/stores/read-store.js';
import { type BatchOutcome, PersistLoop } from './persist-loop.js';

export interface PersistWorkerDeps {
  config: Pick<
    Config,
    | 'QUEUE_PREFIX'
    | 'PERSIST_SHARDS'
    | 'PERSIST_BATCH_SIZE'
    | 'PERSIST_BATCH_WAIT_MS'
    | 'PERSIST_HOLD_MS'
    | 'PERSIST_IDLE_MS'
    | 'PERSIST_BACKOFF_MS'
    | 'PERSIST_BACKOFF_CAP_MS'
    | 'PERSIST_LOCK_MS'
    | 'PERSIST_STALLED_MS'
    | 'PERSIST_MAX_STALLS'
  >;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  /** The message log on a worker command connection, with the persist queue (hand-on jobs). */
  log: Pick<MessageLog, 'readPending' | 'markPersisted' | 'requeue' | 'keepTickets' | 'drop' | 'publishPersisted'>;
  /** The batch INSERT (MessageStore.insertBatch). */
  insertBatch: (messages: Message[]) => Promise<InsertResult>;
  /**
   * What else a batch moves in PostgreSQL once its INSERT is done, one statement each per batch
   * (left out where a test or the bench looks at the INSERT alone):
   * - each sender's read position, to their newest message in it, so that unreadCount never counts
   *   a member's own messages, durably, without a job or a round trip per send (the api moves the
   *   same position in Redis right after the ack);
   * - each chat's last activity (the chat list's order), to its newest message in it.
   * If either fails the batch fails and is retried: the INSERT is idempotent and both only move
   * forward. Superseded messages were never acked and move nothing.
   */
  batchUpdates?: { reads: Pick<ReadStore, 'advanceBatch'>; chats: Pick<ChatStore, 'advanceActivity'> };
  /** The batch's changes to messages (MessageStore.updateChanges), after its INSERT. */
  updateChanges: (messages: Message[]) => Promise<number>;
  /**
   * Awaited once PostgreSQL holds the batch, before its messages are marked persisted: the new
   * (acked) messages and the changed ones, in their state now (the webhook events, workers/main.ts).
   * Throwing fails the batch, which is redone and calls it again with the same messages (whose
   * events have the same ids): at least once.
   */
  onWritten?: (created: Message[], updated: Message[]) => Promise<void>;
  logger: Logger;
  /** Called after each batch with its size, how many rows were new and when each message was accepted (metrics, tests). */
  onBatch?: (size: number, inserted: number, createdAtMs: number[]) => void;
  /**
   * Test seam: awaited after a batch's INSERT and bookkeeping, before its chats are let go or
   * held for the next batch (a worker that dies here holds chats with messages still pending).
   */
  afterBatch?: (chatIds: string[]) => Promise<void>;
}

/**
 * The persist worker. A persist job names a chat; the worker holds it (PersistLoop) while it stays
 * busy. Every PERSIST_BATCH_WAIT_MS (at once for a backlog) one batch reads every held chat's
 * lowest pending messages from the message log, an equal share of PERSIST_BATCH_SIZE each, and
 * writes them all with one INSERT; then, per chat, the log marks them persisted and renews the
 * ticket: the chat stays for the next batch (up to PERSIST_HOLD_MS, then its next job is added),
 * until a batch finds nothing pending, releases the ticket and lets the job complete (the
 * persist-ticket protocol, src/message-log/persist-ticket.ts). A failed INSERT fails every job of the batch; each retries
 * with backoff and keeps its ticket.
 */
export function createPersistWorker(deps: PersistWorkerDeps) {
  const { config, log, logger } = deps;

  async function write(chatIds: string[], letGo: ReadonlySet<string>): Promise<BatchOutcome> {
    const share = Math.max(1, Math.floor(config.PERSIST_BATCH_SIZE / chatIds.length));
    const chats = await log.readPending(chatIds, share, letGo);
    const batch = chats.flatMap((c) => c.messages.map((m) => m.message));
    const { inserted, superseded } = await deps.insertBatch(batch);
    // After the INSERT: a change to a message written in this same batch finds its row.
    const changed = chats.flatMap((c) => c.changes.map((m) => m.message));
    await deps.updateChanges(changed);
    const acked = superseded.length === 0 ? batch : batch.filter((m) => !superseded.includes(m));
    if (deps.batchUpdates) {
      await deps.batchUpdates.reads.advanceBatch(ownReadPositions(acked));
      await deps.batchUpdates.chats.advanceActivity(chatActivity(acked));
    }
    if (deps.onWritten && acked.length + changed.length > 0) await deps.onWritten(acked, changed);
    const outcome: Required<BatchOutcome> = { idle: [], quiet: [], more: [], backlog: [] };
    const written: PersistedChat[] = [];
    const persisted: { chatId: string; seq: number }[] = [];
    for (const { chatId, messages, orphans, changes } of chats) {
      if (orphans.length > 0) {
        logger.error(
          { chatId, seqs: orphans },
          'pending messages missing from Redis (data lost there); dropped from the pending set',
        );
      }
      // Nothing was pending: a chat let go had its ticket released by the read (its job may
      // complete); another keeps it a while longer.
      if (messages.length + orphans.length + changes.length === 0)
        (letGo.has(chatId) ? outcome.idle : outcome.quiet).push(chatId);
      else {
        written.push({
          chatId,
          seqs: [...messages.map((m) => m.message.seq), ...orphans],
          changes: changes.map((m) => ({ seq: m.message.seq, rev: m.message.rev })),
        });
        (messages.length >= share || changes.length >= share ? outcome.backlog : outcome.more).push(chatId);
        // The batch read the chat's lowest pending seqs: PostgreSQL now holds every one up to its last.
        const last = messages.at(-1);
        if (last) persisted.push({ chatId, seq: last.message.seq });
      }
    }
    await log.markPersisted(written);
    // Members hear it only now that PostgreSQL has the rows (persisted frames, docs/protocol.md).
    await log.publishPersisted(persisted);
    // Never acked (see MessageStore.insertBatch): they leave Redis too, so history does not show them.
    if (superseded.length > 0) {
      const gone = new Set(superseded);
      const stored = chats.flatMap((c) => c.messages.filter((m) => gone.has(m.message)));
      await Promise.all(stored.map((m) => log.drop(m.message.chatId, m.json)));
      logger.warn(
        { messages: superseded.map((m) => ({ chatId: m.chatId, seq: m.seq })) },
        'superseded by their retry stored while Redis was down',
      );
    }
    if (batch.length > 0)
      deps.onBatch?.(
        batch.length,
        inserted,
        batch.map((m) => Date.parse(m.createdAt)),
      );
    await deps.afterBatch?.(chatIds);
    return outcome;
  }

  const loop = new PersistLoop({
    maxChats: config.PERSIST_BATCH_SIZE,
    waitMs: config.PERSIST_BATCH_WAIT_MS,
    holdMs: config.PERSIST_HOLD_MS,
    idleMs: config.PERSIST_IDLE_MS,
    write: async (chatIds, letGo) => {
      try {
        return await write(chatIds, letGo);
      } catch (err) {
        // A batch that failed keeps its chats' tickets alive while its jobs wait for their retry.
        await log.keepTickets(chatIds);
        throw err;
      }
    },
    handOn: (chatIds) => log.requeue(chatIds),
    onHandOnError: (err, chatIds) =>
      logger.warn({ err: errorText(err), chats: chatIds.length }, 'hand-on failed; the chats stay held'),
  });

  // One BullMQ Worker per shard of `persist` (PERSIST_SHARDS), all holding their chats in the one
  // loop, so that a batch takes chats of every shard into one INSERT. Together they hold at most
  // PERSIST_BATCH_SIZE chats, as one queue's worker does, so every held chat fits in a batch.
  const shards = queueShards(QUEUES.persist, config.QUEUE_PREFIX, config.PERSIST_SHARDS);
  const concurrency = Math.max(1, Math.floor(config.PERSIST_BATCH_SIZE / shards.length));
  const workers = shards.map((shard) => {
    const worker = new Worker(
      shard.name,
      // Garbage fails its own job at once, unretried; a good job is held until its chat is idle.
      (job: Job) => loop.hold(parseJobData(QUEUES.persist, persistJobSchema, job).chatId),
      {
        connection: deps.connection,
        prefix: shard.prefix,
        // A chat held per job: this many chats at once, which is also the most a batch takes.
        concurrency,
        // Short locks and frequent checks: a dead worker's chats are written again within seconds.
        lockDuration: config.PERSIST_LOCK_MS,
        stalledInterval: config.PERSIST_STALLED_MS,
        maxStalledCount: config.PERSIST_MAX_STALLS,
        settings: { backoffStrategy: backoffStrategy(persistRetryPace(config)) },
      },
    );
    worker.on('failed', (job, err) =>
      logger.warn(
        { queue: shard.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message },
        'job failed',
      ),
    );
    worker.on('error', (err) => logger.warn({ queue: shard.name, err: err.message }, 'worker error'));
    return worker;
  });

  return {
    /** One per shard, in shard order. */
    workers,
    async waitUntilReady(): Promise<void> {
      await Promise.all(workers.map((w) => w.waitUntilReady()));
    },
    /** Finishes the batch under way and hands on the chats still held, then stops taking jobs. */
    async close(): Promise<void> {
      const closing = Promise.all(workers.map((w) => w.close()));
      await loop.drain();
      await closing;
    },
  };
}

/** The newest own message of each (chat, sender) in a batch. */
export function ownReadPositions(batch: Message[]): ReadPosition[] {
  const newest = new Map<string, ReadPosition>();
  for (const m of batch) {
    const key = `${m.chatId} ${m.senderId}`;
    const seen = newest.get(key);
    if (!seen || seen.seq < m.seq) newest.set(key, { chatId: m.chatId, userId: m.senderId, seq: m.seq });
  }
  return [...newest.values()];
}

/** The newest message time and highest seq of each chat in a batch (ISO-8601 UTC strings order as times do). */
export function chatActivity(batch: Message[]): { chatId: string; at: string; seq: number }[] {
  const newest = new Map<string, { chatId: string; at: string; seq: number }>();
  for (const m of batch) {
    const seen = newest.get(m.chatId);
    if (!seen) newest.set(m.chatId, { chatId: m.chatId, at: m.createdAt, seq: m.seq });
    else {
      if (seen.at < m.createdAt) seen.at = m.createdAt;
      if (seen.seq < m.seq) seen.seq = m.seq;
    }
  }
  return [...newest.values()];
}
