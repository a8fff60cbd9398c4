import type { Redis } from 'ioredis';
import { type Keys, seqOfJson } from './keys.js';

/**
 * When a message JSON was accepted, in ms since the epoch (NaN when it carries no createdAt).
 * createdAt is the last field the send path writes, so anchoring at the end means a body can
 * never be mistaken for it.
 */
export function createdAtMsOfJson(json: string): number {
  const m = /"createdAt":"([^"]+)"}$/.exec(json);
  return m?.[1] ? Date.parse(m[1]) : Number.NaN;
}

/**
 * Reads a chat's active list by seq rather than by index. The list is ascending by seq and, but
 * across a Redis outage, gapless, so a message's index is its seq minus the head's: one LRANGE
 * finds them all. When the guess misses (a gap, or the head moved between two reads) the whole
 * list is read once instead; a wrong answer is never returned, only a slower one.
 */
export function createActiveListReader(redis: Redis, keys: Keys) {
  return {
    /** The JSON of each of `seqs` (ascending) that the list holds. */
    async bySeqs(chatId: string, seqs: readonly number[]): Promise<Map<number, string>> {
      const found = new Map<number, string>();
      const first = seqs[0];
      const last = seqs[seqs.length - 1];
      if (first === undefined || last === undefined) return found;
      const key = keys.active(chatId);
      const head = await redis.lindex(key, 0);
      if (head === null) return found;
      const headSeq = seqOfJson(head);
      const wanted = new Set(seqs);
      const collect = (items: string[]) => {
        for (const json of items) {
          const seq = seqOfJson(json);
          if (wanted.has(seq)) found.set(seq, json);
        }
      };
      if (last >= headSeq) collect(await redis.lrange(key, Math.max(0, first - headSeq), last - headSeq));
      if (found.size < seqs.filter((s) => s >= headSeq).length) collect(await redis.lrange(key, 0, -1));
      return found;
    },

    /** Up to `count` messages from index `start`, with their seqs. */
    async page(chatId: string, start: number, count: number): Promise<{ seq: number; json: string }[]> {
      const items = await redis.lrange(keys.active(chatId), start, start + count - 1);
      return items.map((json) => ({ seq: seqOfJson(json), json }));
    },
  };
}

export type ActiveListReader = ReturnType<typeof createActiveListReader>;
