import { AppError } from '../domain/errors.js';

/** Bounds of a HashGate (PASSWORD_HASH_CONCURRENCY, PASSWORD_HASH_QUEUE_MAX). */
export interface HashGateLimits {
  /** Hashes computed at once; the others wait their turn. */
  concurrency: number;
  /** Hashes that may wait, all keys together; one more is refused at once. 0: none wait. */
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
 *
 * Waiting hashes are served in turn per key (the username of a login): a flood aimed at one
 * account queues behind itself, and a login of anyone else takes the next free slot instead of
 * waiting for the whole flood.
 */
export function createHashGate(limits: HashGateLimits) {
  /** Key → its waiting hashes in arrival order; the Map's order is the turn order of the keys. */
  const waiting = new Map<string, (() => void)[]>();
  const stats: HashGateStats = { active: 0, waiting: 0, activeMax: 0, refused: 0 };

  function release(): void {
    // The first key in turn order (a key is in it only while it has a waiting hash).
    for (const [key, line] of waiting) {
      const next = line.shift();
      // The key goes to the back of the turn order (or leaves it when it has no more waiting).
      waiting.delete(key);
      if (line.length > 0) waiting.set(key, line);
      if (!next) continue;
      stats.waiting--;
      // The slot passes straight to the next in turn, so `active` never dips and rises again.
      next();
      return;
    }
    stats.active--;
  }

  return {
    /** Runs `hash` when a slot is free; throws `unavailable` at once when too many already wait. */
    async run<T>(key: string, hash: () => Promise<T>): Promise<T> {
      if (stats.active < limits.concurrency) {
        stats.active++;
      } else if (stats.waiting < limits.queueMax) {
        stats.waiting++;
        await new Promise<void>((resolve) => {
          const line = waiting.get(key);
          if (line) line.push(resolve);
          else waiting.set(key, [resolve]);
        });
      } else {
        stats.refused++;
        throw new AppError('unavailable', 'too many logins at once; try again shortly', {
          retryAfterMs: RETRY_AFTER_MS,
        });
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
