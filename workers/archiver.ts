import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import { errorText } from '../src/domain/errors.js';
import type { Logger } from '../src/logger.js';
import { createdAtMsOf, type MessageLog } from '../src/message-log/message-log.js';
import type { ArchiveReport } from '../src/metrics/worker-metrics.js';
import type { MessageStore } from '../src/stores/message-store.js';

export type ArchiverConfig = Pick<
  Config,
  'ACTIVE_LIST_MAX' | 'ACTIVE_LIST_MAX_AGE_S' | 'ACTIVE_TTL_S' | 'ARCHIVE_REPAIR_GRACE_MS'
>;

export interface ArchiverDeps {
  config: ArchiverConfig;
  /** The message log, with the persist queue (repair jobs). */
  log: Pick<
    MessageLog,
    'chats' | 'state' | 'readRange' | 'readBySeqs' | 'reconcile' | 'claimForRepair' | 'enqueue' | 'archiveTrim'
  >;
  /** The nodes to SCAN: on Redis Cluster every master; else the one command connection. */
  scanNodes: () => readonly Redis[];
  messages: Pick<MessageStore, 'heldSeqs'>;
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
 *   seq (the log's archive trim re-checks both atomically);
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
  const { config, log } = deps;
  const now = deps.now ?? Date.now;

  /** The messages from the head that are over the bound or too old, below the lowest pending seq. */
  async function headCandidates(
    chatId: string,
    len: number,
    lowestPending: number,
    ageCutoffMs: number,
  ): Promise<Item[]> {
    const excess = Math.max(0, len - config.ACTIVE_LIST_MAX);
    const out: Item[] = [];
    for (let start = 0; start < HEAD_MAX; start += PAGE) {
      const page = await log.readRange(chatId, start, PAGE);
      for (const [i, item] of page.entries()) {
        const overBound = start + i < excess;
        if (item.seq >= lowestPending || (!overBound && !(createdAtMsOf(item.json) < ageCutoffMs))) return out;
        out.push(item);
      }
      if (page.length < PAGE) return out;
    }
    return out;
  }

  /**
   * Gives a chat whose messages PostgreSQL lacks a new persist job, unless its persist ticket says
   * one is on the way (a lost job's ticket runs out after PERSIST_TICKET_MS; a later run adds it).
   * `outside` are messages missing from the pending set: they are put back into it so that the
   * job writes them. True when it added one.
   */
  async function requeue(chatId: string, outside: number[]): Promise<boolean> {
    const claim = await log.claimForRepair(chatId, outside);
    if (!claim) return false;
    await log.enqueue([claim]); // a failed add releases the claim: the next run tries again
    return true;
  }

  async function archiveChat(chatId: string, at: number): Promise<ChatReport> {
    const ageCutoffMs = at - config.ACTIVE_LIST_MAX_AGE_S * 1000;
    const graceCutoffMs = at - config.ARCHIVE_REPAIR_GRACE_MS;
    const { length: len, pending: pendingSeqs } = await log.state(chatId, PENDING_MAX);

    const head = await headCandidates(chatId, len, pendingSeqs[0] ?? Number.POSITIVE_INFINITY, ageCutoffMs);
    const pendingJson = await log.readBySeqs(chatId, pendingSeqs);
    // Checked, not assumed: PostgreSQL is asked about every message the run might act on.
    const held = await deps.messages.heldSeqs(chatId, [...head.map((h) => h.seq), ...pendingSeqs]);

    const report: ChatReport = { trimmed: 0, requeued: 0, repended: 0, reconciled: 0, expiring: 0 };
    const heldPending = pendingSeqs.filter((s) => held.has(s));
    if (heldPending.length > 0) {
      await log.reconcile(chatId, heldPending);
      report.reconciled = heldPending.length;
    }

    // Younger messages are most likely in a batch being written, or their job is being added.
    const overdue = (json: string | undefined) => json !== undefined && !(createdAtMsOf(json) >= graceCutoffMs);
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
    const { trimmed, expiring } = await log.archiveTrim(chatId, {
      ageCutoffIso: new Date(ageCutoffMs).toISOString(),
      checkedSeq,
      ttlS: ttl,
    });
    report.trimmed = trimmed;
    report.expiring = expiring ? 1 : 0;
    return report;
  }

  return {
    /**
     * Runs over every chat once; resolves with what it did. Chats that fail are logged and counted.
     * `stopping` ends the run early, between chats (a shutdown: the next run covers the rest).
     */
    async run(stopping: () => boolean = () => false): Promise<ArchiveReport> {
      const started = now();
      const total: ArchiveReport = {
        chats: 0,
        trimmed: 0,
        requeued: 0,
        repended: 0,
        reconciled: 0,
        expiring: 0,
        failedChats: 0,
        durationMs: 0,
      };
      scan: for await (const batch of log.chats(deps.scanNodes())) {
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
                deps.logger.warn({ err: errorText(err), chatId }, 'archive: chat skipped');
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
