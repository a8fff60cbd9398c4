export interface BackoffOptions {
  /** The first ceiling, in ms (default 250). */
  baseMs?: number;
  /** The largest ceiling, in ms (default 15 000). */
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter: a delay drawn uniformly from [0, min(max, base * 2^attempt)).
 * `attempt` counts from 0; `random` returns [0, 1) (Math.random by default).
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const base = options.baseMs ?? 250;
  const max = options.maxMs ?? 15_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.floor(random() * ceiling);
}
