import { AppError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import { type BucketLimits, createTokenBucket, type TokenBucket } from './token-bucket.js';

export interface SendRateLimiterDeps {
  /** True when the append script takes the token itself (one Redis); false on Redis Cluster. */
  inAppend: boolean;
  scripts: Pick<Scripts, 'rateLimit'>;
  keys: Pick<Keys, 'rateLimit'>;
  /** Per user; a capacity or rate of 0 turns the limit off. */
  limits: BucketLimits;
  /** True while Redis is known to be down (the circuit): go local at once instead of timing out. */
  redisDown?: () => boolean;
}

/** Local buckets kept while Redis is unreachable; past this many, full ones are forgotten. */
const FALLBACK_MAX = 10_000;

/**
 * Sends per user: one token bucket in Redis (`ratelimit:{userId}`), so the limit holds across
 * connections and api processes. On one Redis the append script takes the token itself, in the
 * same round trip (`inAppend`: the send service passes `limits` to the append); on Redis Cluster
 * the user's bucket is in another slot than the chat's keys, so `check` takes it first, in a round
 * trip of its own. Either way it is taken before anything is written: a refused send never gets a
 * seq and nothing refused is stored.
 *
 * While Redis is unreachable the limit falls back to a bucket per user in this process
 * (`checkLocally`): looser (per process), but a Redis outage must neither stop sends nor lift
 * every limit.
 */
export function createSendRateLimiter(deps: SendRateLimiterDeps) {
  const { limits } = deps;
  const enabled = limits.capacity > 0 && limits.perSecond > 0;
  const fallback = new Map<string, TokenBucket>();

  function takeLocally(userId: string): number {
    let bucket = fallback.get(userId);
    if (!bucket) {
      if (fallback.size >= FALLBACK_MAX) {
        for (const [id, b] of fallback) if (b.isFull()) fallback.delete(id);
        if (fallback.size >= FALLBACK_MAX) fallback.clear();
      }
      fallback.set(userId, (bucket = createTokenBucket(limits)));
    }
    return bucket.take();
  }

  async function takeShared(userId: string): Promise<number> {
    try {
      const [allowed, wait] = await deps.scripts.rateLimit(
        deps.keys.rateLimit(userId),
        limits.capacity,
        limits.perSecond,
        1,
      );
      if (fallback.size > 0) fallback.clear(); // Redis answers again: it is the one truth
      return allowed === 1 ? 0 : Math.max(1, wait);
    } catch {
      return takeLocally(userId);
    }
  }

  return {
    /** The bucket the append script takes from, or null when it takes none (off, or Redis Cluster). */
    appendBucket: enabled && deps.inAppend ? limits : null,

    /**
     * Takes one send from the user's bucket where the append cannot (Redis Cluster, or Redis
     * down: the local bucket); throws `rate_limited` (carrying the send's clientMsgId and
     * `retryAfterMs`) when there is none.
     */
    async check(userId: string, clientMsgId?: string | null): Promise<void> {
      if (!enabled) return;
      const down = deps.redisDown?.() ?? false;
      if (!down && deps.inAppend) {
        if (fallback.size > 0) fallback.clear(); // Redis answers again: it is the one truth
        return;
      }
      const retryAfterMs = down ? takeLocally(userId) : await takeShared(userId);
      if (retryAfterMs === 0) return;
      throw rateLimited(retryAfterMs, clientMsgId);
    },
  };
}

export type SendRateLimiter = ReturnType<typeof createSendRateLimiter>;

/** The refusal of a send over its limit, naming its clientMsgId (WS) and when to retry. */
export function rateLimited(retryAfterMs: number, clientMsgId?: string | null): AppError {
  return new AppError('rate_limited', `too many messages; retry in ${retryAfterMs} ms`, {
    ...(clientMsgId ? { clientMsgId } : {}),
    retryAfterMs,
  });
}
