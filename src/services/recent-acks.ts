import type { Message } from '../domain/types.js';
import type { Logger } from '../logger.js';
import { decodeMessage } from '../message-log/message-log.js';
import type { InsertResult } from '../stores/message-store.js';

export interface RecentAcksDeps {
  /** How long (ms) an acked message is kept; past it, a worker has long written it. */
  retentionMs: number;
  /** Most messages kept (the oldest go first). */
  max: number;
  insertBatch: (messages: Message[]) => Promise<InsertResult>;
  /** Changes to messages (edits, deletes, reactions): written after the INSERT, never over a later rev. */
  updateChanges: (messages: Message[]) => Promise<number>;
  logger: Logger;
  /** Rows per INSERT when replaying. */
  batchSize?: number;
  now?: () => number;
}

/**
 * The messages and changes to messages this api process acked through Redis in the last `retentionMs`, kept in memory so
 * that a Redis that lost its data (restarted empty, without AOF) does not take them along: the
 * seq guard notices the loss when Redis returns, and `replay` writes them straight to PostgreSQL
 * with their acked seqs (which the gapped re-seed never issues again). Rows already there are
 * skipped, so replaying what a worker wrote costs nothing but the lookup.
 */
export function createRecentAcks(deps: RecentAcksDeps) {
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;
  // A FIFO as an array with a moving start: O(1) add and prune, compacted now and then. Each
  // message is kept as the JSON the send path built anyway: one string, not an object of six.
  let items: { at: number; json: string }[] = [];
  let start = 0;

  function prune(): void {
    const cutoff = now() - deps.retentionMs;
    for (;;) {
      const oldest = items[start];
      if (oldest === undefined || (oldest.at >= cutoff && items.length - start <= deps.max)) break;
      start++;
    }
    if (start > 1024 && start * 2 > items.length) {
      items = items.slice(start);
      start = 0;
    }
  }

  return {
    /** Keeps an acked message, by its JSON (nothing when RECENT_ACKS_MS or RECENT_ACKS_MAX is 0). */
    add(json: string): void {
      if (deps.retentionMs <= 0 || deps.max <= 0) return;
      items.push({ at: now(), json });
      if (items.length - start > deps.max) prune();
    },

    get size(): number {
      prune();
      return items.length - start;
    },

    /**
     * Writes every kept message and change to PostgreSQL; resolves with how many rows were new.
     * `why` goes into the log line (Redis lost its data, or became unreachable).
     */
    async replay(why = 'redis lost its data'): Promise<number> {
      prune();
      const kept: Message[] = items.slice(start).map((i) => decodeMessage(i.json));
      let inserted = 0;
      for (let i = 0; i < kept.length; i += batchSize)
        inserted += (await deps.insertBatch(kept.slice(i, i + batchSize))).inserted;
      // Each message's latest acked state (a changed one's first copy was inserted above).
      for (let i = 0; i < kept.length; i += batchSize) await deps.updateChanges(kept.slice(i, i + batchSize));
      deps.logger.warn({ kept: kept.length, inserted }, `${why}: recently acked messages written to postgres`);
      return inserted;
    },
  };
}

export type RecentAcks = ReturnType<typeof createRecentAcks>;
