import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import type { Logger } from '../src/logger.js';
import { type PersistJob, persistJobOptions, persistJobSchema, QUEUES } from '../src/queues/definitions.js';
import { parseJobData } from '../src/queues/job-data.js';
import type { Keys } from '../src/redis/keys.js';
import type { Scripts } from '../src/redis/scripts.js';
import type { MessageStore } from '../src/stores/message-store.js';
import { createBatchedWorker } from './batched-worker.js';

export interface PersistWorkerDeps {
  config: Config;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** A command connection, and the scripts on it (reading pending messages, the bookkeeping after an INSERT). */
  redis: Pick<Redis, 'set' | 'lrem'>;
  scripts: Scripts;
  keys: Keys;
  messages: MessageStore;
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

/** One chat's share of a batch. */
interface ChatBatch {
  chatId: string;
  messages: Message[];
  /** Pending seqs whose message Redis no longer holds (see pending-messages.lua). */
  orphans: string[];
}

/**
 * The persist worker. A persist job names a chat; BullMQ hands the worker up to
 * PERSIST_BATCH_SIZE of them at once, each processor call parks its chat, and after
 * PERSIST_BATCH_WAIT_MS one batch reads every parked chat's pending messages from Redis (one
 * script call each, pipelined) and writes them all with one INSERT. Then, per chat, the persisted
 * seqs leave the pending set, the active list is trimmed to its bound (never below the lowest
 * still-pending seq, so a message leaves Redis only once PostgreSQL holds it), and the chat's
 * persist ticket is released, or, when messages arrived meanwhile, handed on to the chat's next
 * job, which this worker adds: claimed for PERSIST_TICKET_CLAIM_MS, and made the ticket once the
 * job is added (as the send path does). A failed INSERT fails every job of the batch; each retries
 * with backoff and keeps its ticket.
 */
export function createPersistWorker(deps: PersistWorkerDeps) {
  const { config, scripts, keys, logger } = deps;
  const queue = new Queue<PersistJob>(QUEUES.persist, { connection: deps.connection, prefix: config.QUEUE_PREFIX });
  const jobOptions = persistJobOptions(config);
  /** The exact list entry of each message read (what LREM needs); entries go with their messages. */
  const jsonOf = new WeakMap<Message, string>();

  /**
   * Every parked chat's oldest pending messages: an equal share of PERSIST_BATCH_SIZE each, so
   * that one INSERT stays within it. What a chat has beyond its share waits for the chat's next
   * job, which mark-persisted.lua hands this worker at once.
   */
  async function collect(chatIds: string[], share: number): Promise<ChatBatch[]> {
    const replies = await Promise.all(chatIds.map((chatId) => scripts.pendingMessages([keys.pending(chatId), keys.active(chatId)], share)));
    return chatIds.map((chatId, i) => {
      const [found, orphans] = replies[i]!;
      const messages = found.map((json) => {
        const message = JSON.parse(json) as Message;
        jsonOf.set(message, json);
        return message;
      });
      return { chatId, messages, orphans };
    });
  }

  /**
   * One INSERT for the chats' pending messages, then their bookkeeping; resolves with the chats
   * that still have messages pending, split into those that filled their share (a backlog) and
   * the rest (messages sent while the INSERT ran).
   */
  async function writeOnce(chatIds: string[], claims: Map<string, string>): Promise<{ backlog: string[]; more: string[] }> {
    const share = Math.max(1, Math.floor(config.PERSIST_BATCH_SIZE / chatIds.length));
    const chats = await collect(chatIds, share);
    const batch = chats.flatMap((c) => c.messages);
    const { inserted, superseded } = await deps.messages.insertBatch(batch);
    const backlog: string[] = [];
    const more: string[] = [];
    await Promise.all(
      chats.map(async ({ chatId, messages, orphans }) => {
        if (orphans.length > 0) {
          logger.error({ chatId, seqs: orphans }, 'pending messages missing from Redis (data lost there); dropped from the pending set');
        }
        const claim = { token: `persist-${randomUUID()}`, ttlMs: config.PERSIST_TICKET_CLAIM_MS };
        const [, left] = await scripts.markPersisted(
          [keys.pending(chatId), keys.active(chatId), keys.persistTicket(chatId)],
          config.ACTIVE_LIST_MAX,
          claim,
          [...messages.map((m) => m.seq), ...orphans],
        );
        if (left === 1) {
          claims.set(chatId, claim.token);
          (messages.length >= share ? backlog : more).push(chatId);
        }
      }),
    );
    // Never acked (see MessageStore.insertBatch): they leave Redis too, so history does not show them.
    await Promise.all(superseded.map((m) => deps.redis.lrem(keys.active(m.chatId), 1, jsonOf.get(m)!)));
    if (superseded.length > 0) logger.warn({ messages: superseded.map((m) => ({ chatId: m.chatId, seq: m.seq })) }, 'superseded by their retry stored while Redis was down');
    if (batch.length > 0) deps.onBatch?.(batch.length, inserted);
    return { backlog, more };
  }

  async function persistBatch(parked: string[]): Promise<void> {
    let chatIds = [...new Set(parked)];
    const next: string[] = [];
    /** Each chat's latest claim on its ticket (a backlog chat claims again in every round). */
    const claims = new Map<string, string>();
    // A backlog (after an outage, or a burst) is written at once, batch after batch, rather than
    // waiting PERSIST_BATCH_WAIT_MS for each; a few rounds, then its jobs go back to the queue.
    for (let round = 1; chatIds.length > 0; round++) {
      const { backlog, more } = await writeOnce(chatIds, claims);
      next.push(...more);
      if (round === BACKLOG_ROUNDS) next.push(...backlog);
      chatIds = round === BACKLOG_ROUNDS ? [] : backlog;
    }
    if (next.length === 0) return;
    await deps.beforeHandOn?.(next);
    // The chats' next jobs, on the claims mark-persisted.lua took. If this add fails the batch's
    // jobs fail and retry (their INSERT is idempotent), so the chats are not forgotten.
    await queue.addBulk(next.map((chatId) => ({ name: 'persist', data: { chatId }, opts: jobOptions })));
    // As on the send path, a claim left unconfirmed runs out, and a later send adds a second job
    // for the chat, which costs a lookup: not worth failing the batch for.
    await Promise.all(
      next.map((chatId) => scripts.confirmTicket(keys.persistTicket(chatId), claims.get(chatId)!, config.PERSIST_TICKET_MS).catch(() => undefined)),
    );
  }

  /** A batch that failed keeps its chats' tickets alive while its jobs wait for their retry. */
  async function keepTickets(parked: string[]): Promise<void> {
    await Promise.all(
      [...new Set(parked)].map((chatId) => deps.redis.set(keys.persistTicket(chatId), '1', 'PX', config.PERSIST_TICKET_MS).catch(() => undefined)),
    );
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
        await keepTickets(parked);
        throw err;
      }
    },
    logger,
  });

  return {
    worker: batched.worker,
    async close(): Promise<void> {
      await batched.close();
      await queue.close();
    },
  };
}
