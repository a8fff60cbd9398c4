import { randomUUID } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import type { PersistJob } from '../src/queues/definitions.js';
import type { ArchiveReport } from '../src/metrics/worker-metrics.js';
import { createActiveListReader, createdAtMsOfJson } from '../src/redis/active-list.js';
import type { Keys } from '../src/redis/keys.js';
import { scanChatIds } from '../src/redis/scan.js';
import type { Scripts } from '../src/redis/scripts.js';
import type { MessageStore } from '../src/stores/message-store.js';

export type ArchiverConfig = Pick<
  Config,
  'ACTIVE_LIST_MAX' | 'ACTIVE_LIST_MAX_AGE_S' | 'ACTIVE_TTL_S' | 'ARCHIVE_REPAIR_GRACE_MS' | 'PERSIST_TICKET_MS' | 'PERSIST_TICKET_CLAIM_MS'
>;

export interface ArchiverDeps {
  config: ArchiverConfig;
  /** A command connection (scripts and reads). */
  redis: Redis;
  /** The nodes to SCAN: on Redis Cluster every master; by default `redis` alone. */
  scanNodes?: readonly Redis[];
  scripts: Scripts;
  keys: Keys;
  messages: Pick<MessageStore, 'heldSeqs'>;
  /** The persist queue and the options the send path adds its jobs with. */
  persistQueue: Queue<PersistJob>;
  persistJobOptions: JobsOptions;
  logger: Logger;
  /** The clock (tests move it forward to age messages). */
  now?: () => number;
}

/** Messages read per LRANGE, and at most per chat and run from the head (the next run goes on). */
const PAGE = 500;
const HEAD_MAX = 10_000;
/** Pending seqs checked per chat and run, lowest first. */
const PENDING_MAX = 1000;
/** Chats handled at once. */
const CONCURRENCY = 4;

interface Item {
  seq: number;
  json: string;
}

type ChatReport = Omit<ArchiveReport, 'chats' | 'failedChats' | 'durationMs'>;

/**
 * One archive run over every chat with state in Redis (docs/architecture.md, the message path, step 6):
 * - trims each active list to ACTIVE_LIST_MAX and drops messages older than ACTIVE_LIST_MAX_AGE_S,
 *   but only messages PostgreSQL was just seen to hold, and never at or above the lowest pending
 *   seq (archive-trim.lua re-checks both atomically);
 * - gives a chat a new persist job when its list holds a message that PostgreSQL lacks, that is
 *   older than ARCHIVE_REPAIR_GRACE_MS, and no persist ticket says a job is on the way (an api
 *   that died between its script and its job add, a job deleted by hand, or one given up on,
 *   leave messages only this sweep finds); such a message that is no longer in the pending set
 *   (a row deleted from PostgreSQL) is put back into it;
 * - clears pending seqs PostgreSQL already holds (a worker that inserted, then lost Redis);
 * - lets a chat's keys expire (ACTIVE_TTL_S) once nothing in them is pending.
 * Every step is safe to run twice or concurrently with itself, sends and the persist worker.
 */
export function createArchiver(deps: ArchiverDeps) {
  const { config, redis, keys, scripts } = deps;
  const now = deps.now ?? Date.now;
  const list = createActiveListReader(redis, keys);

  /** The messages from the head that are over the bound or too old, below the lowest pending seq. */
  async function headCandidates(chatId: string, len: number, lowestPending: number, ageCutoffMs: number): Promise<Item[]> {
    const excess = Math.max(0, len - config.ACTIVE_LIST_MAX);
    const out: Item[] = [];
    for (let start = 0; start < HEAD_MAX; start += PAGE) {
      const page = await list.page(chatId, start, PAGE);
      for (const [i, item] of page.entries()) {
        const overBound = start + i < excess;
        if (item.seq >= lowestPending || (!overBound && !(createdAtMsOfJson(item.json) < ageCutoffMs))) return out;
        out.push(item);
      }
      if (page.length < PAGE) return out;
    }
    return out;
  }

  /**
   * Gives a chat whose messages PostgreSQL lacks a new persist job, unless its persist ticket says
   * one is on the way (a lost job's ticket runs out after PERSIST_TICKET_MS; a later run adds it).
   * `outside` are messages missing from the pending set: they are put back into it (the chat's
   * keys made permanent again, as a send does) so that the job writes them. True when it added one.
   */
  async function requeue(chatId: string, outside: number[]): Promise<boolean> {
    const tx = redis.multi();
    if (outside.length > 0) {
      tx.zadd(keys.pending(chatId), ...outside.flatMap((seq) => [seq, seq]))
        .persist(keys.active(chatId))
        .persist(keys.seq(chatId));
    }
    // Claimed as a send claims it: if this process dies before its job add, the claim runs out soon.
    const token = `archive-${randomUUID()}`;
    const replies = (await tx.set(keys.persistTicket(chatId), token, 'PX', config.PERSIST_TICKET_CLAIM_MS, 'NX').exec()) ?? [];
    const failed = replies.find(([err]) => err)?.[0];
    if (failed) throw failed;
    if (replies[replies.length - 1]?.[1] !== 'OK') return false;
    try {
      await deps.persistQueue.add('persist', { chatId }, deps.persistJobOptions);
    } catch (err) {
      await redis.del(keys.persistTicket(chatId)).catch(() => undefined); // the next run tries again
      throw err;
    }
    await scripts.confirmTicket(keys.persistTicket(chatId), token, config.PERSIST_TICKET_MS);
    return true;
  }

  async function archiveChat(chatId: string, at: number): Promise<ChatReport> {
    const ageCutoffMs = at - config.ACTIVE_LIST_MAX_AGE_S * 1000;
    const graceCutoffMs = at - config.ARCHIVE_REPAIR_GRACE_MS;
    const [lenReply, pendingReply] = (await redis
      .multi()
      .llen(keys.active(chatId))
      .zrange(keys.pending(chatId), '0', String(PENDING_MAX - 1))
      .exec()) ?? [];
    if (lenReply?.[0] || pendingReply?.[0]) throw lenReply?.[0] ?? pendingReply?.[0];
    const len = Number(lenReply?.[1] ?? 0);
    const pendingSeqs = ((pendingReply?.[1] ?? []) as string[]).map(Number);

    const head = await headCandidates(chatId, len, pendingSeqs[0] ?? Number.POSITIVE_INFINITY, ageCutoffMs);
    const pendingJson = await list.bySeqs(chatId, pendingSeqs);
    // Checked, not assumed: PostgreSQL is asked about every message the run might act on.
    const held = await deps.messages.heldSeqs(chatId, [...head.map((h) => h.seq), ...pendingSeqs]);

    const report: ChatReport = { trimmed: 0, requeued: 0, repended: 0, reconciled: 0, expiring: 0 };
    const heldPending = pendingSeqs.filter((s) => held.has(s));
    if (heldPending.length > 0) {
      await scripts.markPersisted([keys.pending(chatId), keys.active(chatId), keys.persistTicket(chatId)], config.ACTIVE_LIST_MAX, null, heldPending);
      report.reconciled = heldPending.length;
    }

    // Younger messages are most likely in a batch being written, or their job is being added.
    const overdue = (json: string | undefined) => json !== undefined && !(createdAtMsOfJson(json) >= graceCutoffMs);
    const unpersistedHead = head.filter((h) => !held.has(h.seq));
    const outside = unpersistedHead.filter((h) => overdue(h.json)).map((h) => h.seq);
    const overduePending = pendingSeqs.filter((seq) => !held.has(seq) && overdue(pendingJson.get(seq)));
    if (outside.length + overduePending.length > 0) {
      report.repended = outside.length;
      if (await requeue(chatId, outside)) report.requeued = outside.length + overduePending.length;
    }

    let checkedSeq = 0;
    for (const h of head) {
      if (!held.has(h.seq)) break;
      checkedSeq = h.seq;
    }
    // A message PostgreSQL lacks outside the pending set means that set cannot be trusted for
    // this chat right now: no TTL until a later run finds it whole.
    const ttl = unpersistedHead.length > 0 ? 0 : config.ACTIVE_TTL_S;
    const [trimmed, expiring] = await scripts.archiveTrim(
      [keys.active(chatId), keys.pending(chatId), keys.seq(chatId)],
      config.ACTIVE_LIST_MAX,
      new Date(ageCutoffMs).toISOString(),
      checkedSeq,
      ttl,
    );
    report.trimmed = trimmed;
    report.expiring = expiring;
    return report;
  }

  return {
    /**
     * Runs over every chat once; resolves with what it did. Chats that fail are logged and counted.
     * `stopping` ends the run early, between chats (a shutdown: the next run covers the rest).
     */
    async run(stopping: () => boolean = () => false): Promise<ArchiveReport> {
      const started = now();
      const total: ArchiveReport = { chats: 0, trimmed: 0, requeued: 0, repended: 0, reconciled: 0, expiring: 0, failedChats: 0, durationMs: 0 };
      scan: for await (const batch of scanChatIds(deps.scanNodes ?? [redis], keys)) {
        for (let i = 0; i < batch.length; i += CONCURRENCY) {
          if (stopping()) break scan;
          await Promise.all(
            batch.slice(i, i + CONCURRENCY).map(async (chatId) => {
              total.chats++;
              try {
                const r = await archiveChat(chatId, now());
                total.trimmed += r.trimmed;
                total.requeued += r.requeued;
                total.repended += r.repended;
                total.reconciled += r.reconciled;
                total.expiring += r.expiring;
              } catch (err) {
                total.failedChats++;
                deps.logger.warn({ err: (err as Error).message, chatId }, 'archive: chat skipped');
              }
            }),
          );
        }
      }
      total.durationMs = now() - started;
      const busy = total.trimmed + total.requeued + total.reconciled + total.failedChats > 0;
      deps.logger[busy ? 'info' : 'debug'](total, 'archive run');
      return total;
    },
  };
}

export type Archiver = ReturnType<typeof createArchiver>;
