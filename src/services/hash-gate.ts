import { AppError } from '../domain/errors.js';

/** Bounds of a HashGate (PASSWORD_HASH_CONCURRENCY, PASSWORD_HASH_QUEUE_MAX). */
export interface HashGateLimits {
  /** Hashes computed at once; the others wait their turn in arrival order. */
  concurrency: number;
  /** Hashes that may wait; one more is refused at once. 0: none wait. */
  queueMax: number;
}

/** What the gate is doing, for the metrics. */
export interface HashGateStats {
  active: number;
  waiting: number;
  /** The most hashes that were ever computed at once (never above `concurrency`). */
  activeMax: number;
  /** Hashes refused because the queue was full, since start. */
  refused: number;
}

/** How long a refused client is told to wait: a full queue drains in well under a second. */
const RETRY_AFTER_MS = 1000;

/**
 * The per-process bound on password hashing. scrypt runs on libuv's small thread pool (4 threads
 * by default), which DNS lookups, file reads and zlib share: a flood of logins, each a hash,
 * would occupy every thread and queue everything else behind it without bound. The gate lets
 * `concurrency` hashes run, queues up to `queueMax` more, and refuses the rest at once with
 * 503 `unavailable` (Retry-After): the server is busy, which is not the client's fault, so it is
 * not a 429; and answering at once costs nothing, while a longer queue would only make every
 * login behind it slower.
 */
export function createHashGate(limits: HashGateLimits) {
  const waiting: (() => void)[] = [];
  const stats: HashGateStats = { active: 0, waiting: 0, activeMax: 0, refused: 0 };

  function release(): void {
    const next = waiting.shift();
    stats.waiting = waiting.length;
    // The slot passes straight to the next in line, so `active` never dips and rises again.
    if (next) next();
    else stats.active--;
  }

  return {
    /** Runs `hash` when a slot is free; throws `unavailable` at once when too many already wait. */
    async run<T>(hash: () => Promise<T>): Promise<T> {
      if (stats.active < limits.concurrency) {
        stats.active++;
      } else if (waiting.length < limits.queueMax) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          stats.waiting = waiting.length;
        });
      } else {
        stats.refused++;
        throw new AppError('unavailable', 'too many logins at once; try again shortly', { retryAfterMs: RETRY_AFTER_MS });
      }
      stats.activeMax = Math.max(stats.activeMax, stats.active);
      try {
        return await hash();
      } finally {
        release();
      }
    },

    stats(): Readonly<HashGateStats> {
      return stats;
    },
  };
}

export type HashGate = ReturnType<typeof createHashGate>;
