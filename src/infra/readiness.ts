import { withTimeout } from './with-timeout.js';

/** How the api serves: `normal` through Redis, `degraded` on PostgreSQL alone (docs/architecture.md). */
export type ServingMode = 'normal' | 'degraded';

/** The body of GET /readyz (docs/protocol.md): each dependency's reachability and the mode. */
export interface Readiness {
  redis: boolean;
  postgres: boolean;
  mode: ServingMode;
}

export interface ReadinessDeps {
  /** The api's fail-fast command connection. */
  redis: { ping(): Promise<unknown> };
  pool: { query(sql: string): Promise<unknown> };
  /** Longest a probe may take before its dependency counts as down, in ms. */
  timeoutMs?: number;
  /**
   * True while the api serves in degraded mode (its Redis circuit is open). Without it the mode
   * is `degraded` exactly when the PING fails. With it, Redis also counts as down until the
   * circuit has closed, since a PING alone does not make Redis usable again (counters must be
   * re-seeded first).
   */
  degraded?: () => boolean;
}

/** Probes both dependencies in parallel, each bounded, and never throws. */
export function createReadiness(deps: ReadinessDeps): () => Promise<Readiness> {
  const timeoutMs = deps.timeoutMs ?? 1500;
  const probe = (work: () => Promise<unknown>, what: string) =>
    withTimeout(Promise.resolve().then(work), timeoutMs, what).then(
      () => true,
      () => false,
    );
  return async () => {
    const [redis, postgres] = await Promise.all([
      probe(() => deps.redis.ping(), 'redis ping'),
      probe(() => deps.pool.query('SELECT 1'), 'postgres probe'),
    ]);
    const usable = redis && !(deps.degraded?.() ?? false);
    return { redis: usable, postgres, mode: usable ? 'normal' : 'degraded' };
  };
}
