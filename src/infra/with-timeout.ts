/** Thrown by withTimeout when the work took too long. */
export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} took longer than ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Rejects when `work` has not settled after `ms`. Probes (readiness, metrics) use it because a
 * BullMQ connection queues commands while Redis is away and a pg pool waits for a connection:
 * without a bound, a scrape or a readiness check would hang exactly when it matters.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
