import { AppError, isUnavailableError } from '../domain/errors.js';
import type { Message } from '../domain/types.js';
import { decodeMessage, type MessageLog } from '../message-log/message-log.js';
import type { MessageStore } from '../stores/message-store.js';

export interface HistoryQuery {
  before?: number | undefined;
  after?: number | undefined;
  limit: number;
}

export interface HistoryPage {
  /** Ascending seq. */
  messages: Message[];
  /** True when more messages lie beyond this page in the direction read. */
  hasMore: boolean;
}

export interface HistoryServiceDeps {
  log: Pick<MessageLog, 'history'>;
  messages: Pick<MessageStore, 'page'>;
}

const NO_BOUND = Number.MAX_SAFE_INTEGER;

/**
 * History merges the active list (recent, maybe not yet persisted) with PostgreSQL (everything
 * persisted). A message leaves the list only once PostgreSQL holds it, so whatever is below the
 * list's first seq is in PostgreSQL. PostgreSQL is read only when the list cannot answer alone.
 * One extra message is read in each direction so that `hasMore` is exact.
 */
export function createHistoryService(deps: HistoryServiceDeps) {
  async function page(chatId: string, q: HistoryQuery): Promise<HistoryPage> {
    const mode = q.after !== undefined ? 'after' : 'before';
    const bound = q.after ?? q.before ?? NO_BOUND;
    const want = q.limit + 1;

    let fromRedis: Message[] = [];
    let head = 0;
    let complete = false;
    try {
      const reply = await deps.log.history(chatId, mode, bound, want);
      head = reply.head;
      complete = reply.complete;
      fromRedis = reply.jsons.map(decodeMessage);
    } catch (err) {
      if (!isUnavailableError(err)) throw err;
      // Redis down: PostgreSQL alone answers (degraded mode).
    }

    // The list alone is the answer when it holds every seq from its head to the newest one and
    // the page does not reach below its head (or nothing lies below it: the head is seq 1).
    const enough = complete && (mode === 'after' ? bound + 1 >= head : fromRedis.length === want || head <= 1);
    let merged = fromRedis;
    if (!enough) {
      // Below the head only PostgreSQL has messages; above it, only when the list is incomplete.
      const pgBound = complete && mode === 'before' ? Math.min(bound, head) : bound;
      const pgWant = complete && mode === 'before' ? want - fromRedis.length : want;
      let fromPg: Message[];
      try {
        fromPg = await deps.messages.page(chatId, mode, pgBound, pgWant);
      } catch (err) {
        if (isUnavailableError(err)) throw new AppError('unavailable', 'history is unavailable, try again');
        throw err;
      }
      merged = mergeBySeq(fromRedis, fromPg);
      merged = mode === 'after' ? merged.slice(0, want) : merged.slice(-want);
    }

    const hasMore = merged.length === want;
    if (hasMore) merged = mode === 'after' ? merged.slice(0, q.limit) : merged.slice(1);
    return { messages: merged, hasMore };
  }

  /** Every message after `afterSeq`, page by page, in seq order (the `sync` frame). */
  async function* since(chatId: string, afterSeq: number, pageSize = 200): AsyncGenerator<Message[]> {
    let after = afterSeq;
    for (;;) {
      const p = await page(chatId, { after, limit: pageSize });
      if (p.messages.length > 0) yield p.messages;
      const last = p.messages.at(-1);
      // A page with more beyond it is never empty.
      if (!p.hasMore || !last) return;
      after = last.seq;
    }
  }

  return { page, since };
}

/** Union of two ascending lists, by seq, without duplicates. */
export function mergeBySeq(a: Message[], b: Message[]): Message[] {
  const bySeq = new Map<number, Message>();
  for (const m of b) bySeq.set(m.seq, m);
  for (const m of a) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}

export type HistoryService = ReturnType<typeof createHistoryService>;
