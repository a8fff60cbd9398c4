/** Limits of a token bucket: up to `capacity` at once, refilled at `perSecond`. */
export interface BucketLimits {
  /** The most tokens the bucket holds: the burst allowed after a quiet spell. */
  capacity: number;
  /** Tokens added per second (the sustained rate). */
  perSecond: number;
}

/** Tolerance for float drift in refills (a token 1e-9 short is a whole token). */
const EPSILON = 1e-9;

/**
 * An in-memory token bucket, for limits that are per process by nature (frames per connection)
 * and as the fallback of the Redis bucket while Redis is unreachable. Same arithmetic as
 * src/redis/scripts/rate-limit.lua, so both behave alike.
 */
export function createTokenBucket(limits: BucketLimits, now: () => number = Date.now) {
  let tokens = limits.capacity;
  let ts = now();

  function refill(): number {
    const t = now();
    tokens = Math.min(limits.capacity, tokens + (Math.max(0, t - ts) * limits.perSecond) / 1000);
    ts = t;
    return t;
  }

  return {
    /** Takes `cost` tokens; returns 0 when taken, else the ms until they would be there. */
    take(cost = 1): number {
      refill();
      if (tokens + EPSILON >= cost) {
        tokens -= cost;
        return 0;
      }
      return limits.perSecond > 0
        ? Math.max(1, Math.ceil(((cost - tokens) * 1000) / limits.perSecond - EPSILON))
        : Number.POSITIVE_INFINITY;
    },

    /** True when the bucket is full again, i.e. it remembers nothing worth keeping. */
    isFull(): boolean {
      refill();
      return tokens + EPSILON >= limits.capacity;
    },
  };
}

export type TokenBucket = ReturnType<typeof createTokenBucket>;
