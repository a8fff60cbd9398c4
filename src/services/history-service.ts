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
  log: Pick<MessageLog, 'history' | 'changesSince' | 'overlayChanges'>;
  messages: Pick<MessageStore, 'page' | 'changedSince' | 'bySeqs'>;
}

/** The changed messages a `sync` with {seq, rev} replays, and the chat's rev to report in `synced`. */
export interface ChangesPage {
  /** Ascending rev: each message once, as it is now. */
  messages: Message[];
  /** Every change of the chat up to this rev has been returned or reaches the client live. */
  rev: number;
}

/** Most changed messages one sync replays per chat from Redis's index before it reads PostgreSQL. */
const CHANGES_MAX = 1000;

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
      merged = mergeBySeq(fromRedis, await overlay(chatId, fromPg));
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
      const last = p.messages.at(-1);
      if (last) yield p.messages;
      if (!p.hasMore || !last) return;
      after = last.seq;
    }
  }

  /** PostgreSQL's copies with Redis's later changes laid over them (none while Redis is away). */
  async function overlay(chatId: string, fromPg: Message[]): Promise<Message[]> {
    if (fromPg.length === 0) return fromPg;
    try {
      return await deps.log.overlayChanges(chatId, fromPg);
    } catch (err) {
      if (isUnavailableError(err)) return fromPg;
      throw err;
    }
  }

  /**
   * The chat's messages up to `upToSeq` changed after `sinceRev` (`sync` with {seq, rev}), each
   * once in its state now, in rev order: from Redis's change index when it reaches back that far,
   * else from PostgreSQL with Redis's later changes laid over.
   */
  async function changesSince(chatId: string, sinceRev: number, upToSeq: number): Promise<ChangesPage> {
    let fromRedis: Message[] = [];
    // A plain-number sync asks with "any" rev: it still learns the chat's rev now.
    let rev = sinceRev < Number.MAX_SAFE_INTEGER ? sinceRev : 0;
    let complete = false;
    try {
      const reply = await deps.log.changesSince(chatId, sinceRev, upToSeq, CHANGES_MAX);
      rev = Math.max(rev, reply.rev);
      complete = reply.complete && reply.changed.length < CHANGES_MAX;
      const gone = reply.changed.filter((c) => c.json === '').map((c) => c.seq);
      // Changed, then written and let go by Redis: PostgreSQL holds it as it is now.
      const stored = gone.length > 0 ? await deps.messages.bySeqs(chatId, gone) : [];
      // A message may come twice (the index and the pending changes): the later rev wins below.
      fromRedis = mergeBySeq(
        reply.changed.flatMap((c) => (c.json === '' ? [] : [decodeMessage(c.json)])),
        stored,
      );
    } catch (err) {
      if (!isUnavailableError(err)) throw err;
      // Redis down: PostgreSQL alone answers (degraded mode).
    }
    let merged = fromRedis;
    // Asked only for the rev (a plain-number sync): no change can be newer than "any".
    if (!complete && sinceRev < Number.MAX_SAFE_INTEGER) {
      let fromPg: Message[];
      try {
        fromPg = await deps.messages.changedSince(chatId, sinceRev, upToSeq, 10 * CHANGES_MAX);
      } catch (err) {
        if (isUnavailableError(err)) throw new AppError('unavailable', 'sync is unavailable, try again');
        throw err;
      }
      merged = mergeBySeq(fromRedis, await overlay(chatId, fromPg));
    }
    merged = merged.filter((m) => m.rev > sinceRev).sort((a, b) => a.rev - b.rev);
    for (const m of merged) rev = Math.max(rev, m.rev);
    return { messages: merged, rev };
  }

  return { page, since, changesSince };
}

/** Union of two lists by seq, ascending, without duplicates: of two copies the later rev wins. */
export function mergeBySeq(a: Message[], b: Message[]): Message[] {
  const bySeq = new Map<number, Message>();
  for (const m of [...b, ...a]) {
    const seen = bySeq.get(m.seq);
    if (!seen || m.rev >= seen.rev) bySeq.set(m.seq, m);
  }
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}

export type HistoryService = ReturnType<typeof createHistoryService>;
