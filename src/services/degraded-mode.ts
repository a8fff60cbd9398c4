import type { RedisCircuit } from '../infra/redis-circuit.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/client.js';
import type { MembershipService } from './membership-service.js';
import type { SeqGuard } from './seq-guard.js';

export interface DegradedModeDeps {
  /** The api's fail-fast command connection. */
  redis: RedisClient;
  circuit: RedisCircuit;
  seqGuard: Pick<SeqGuard, 'ensureGeneration' | 'closeDegradedRuns'>;
  membership: Pick<MembershipService, 'dropCaches'>;
  /** False in PostgreSQL-only mode: the circuit is open for good, there is nothing to check. */
  redisEnabled: boolean;
  /** How long a starting api waits for Redis before it starts degraded (REDIS_CONNECT_TIMEOUT). */
  connectTimeoutMs: number;
  logger: Logger;
}

/**
 * Degraded mode: the api on PostgreSQL alone while Redis is unreachable (docs/architecture.md
 * "Degraded modes"). The circuit (infra/redis-circuit.ts) decides, opening when the command
 * connection drops or commands keep failing. While it is open, sends go straight to PostgreSQL
 * (send-service.ts, then stores/direct-message-store.ts, which allocates the seq under the chat
 * row's lock and NOTIFYs), live fan-out goes through LISTEN/NOTIFY (realtime/pg-fanout.ts), history
 * is read from PostgreSQL alone (history-service.ts), and presence, typing and read answer
 * `unavailable`.
 *
 * This is the way back: the steps the circuit runs, in order, when Redis answers again, before
 * normal mode resumes, so that no counter can reuse a seq (seq-guard.ts); and the same check at
 * startup, since an api may start during an outage, or after Redis lost its data.
 */
export async function startDegradedMode(deps: DegradedModeDeps): Promise<void> {
  const { circuit, seqGuard, logger } = deps;
  // Redis lost its data meanwhile: every chat re-seeds a gap above PostgreSQL, recent acks are replayed.
  circuit.onRecovery(seqGuard.ensureGeneration);
  // Each counter raised past the seqs PostgreSQL allocated, their clientMsgIds restored.
  circuit.onRecovery(async () => void (await seqGuard.closeDegradedRuns({ afterOutage: true })));
  // Membership changed while Redis was away were not announced there: drop the cached sets.
  circuit.onRecovery(() => deps.membership.dropCaches());

  if (!deps.redisEnabled) return;
  // A fresh api waits (briefly) for its connection: the generation check must see Redis's real
  // state, or a Redis that lost its data could go unnoticed. If Redis is away, recovery runs it.
  if (!(await connected(deps.redis, deps.connectTimeoutMs))) {
    circuit.trip('not reachable at startup');
    return;
  }
  await seqGuard
    .ensureGeneration()
    .catch((err: unknown) => logger.warn({ err: messageOf(err) }, 'generation check deferred'));
  // Sends PostgreSQL took while no api had Redis (a PostgreSQL-only run, an api restarted in an
  // outage) close their runs now, as a recovery would: retries of them stay idempotent.
  await seqGuard
    .closeDegradedRuns()
    .catch((err: unknown) => logger.warn({ err: messageOf(err) }, 'degraded runs left open until the next recovery'));
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Resolves true once the client is ready, false if it is not within `timeoutMs`. */
function connected(redis: RedisClient, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.on('ready', onReady);
  });
}
