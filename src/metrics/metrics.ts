import type { Queue } from 'bullmq';
import type { Pool } from 'pg';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { errorText } from '../domain/errors.js';
import { withTimeout } from '../infra/with-timeout.js';
import type { Logger } from '../logger.js';
import { keyNodes, type RedisClient } from '../redis/client.js';
import type { LagSummary, PersistenceLag } from './persistence-lag.js';

export interface MetricsDeps {
  /** Every queue whose depth is shown (the openQueues map's values). */
  queues: readonly Queue[];
  /** A connection for INFO memory (the api's fail-fast one where there is one). */
  redis: RedisClient;
  pool: Pool;
  /** Sync monitoring; without it the persistence gauges are not registered. */
  lag?: PersistenceLag;
  /** A lag sample younger than this is reused (a sample costs a SCAN), in ms. */
  lagMaxAgeMs: number;
  /** Longest one collector may take per scrape before it is reported as failed, in ms. */
  collectTimeoutMs?: number;
  logger: Logger;
}

/** The job states whose counts an operator watches. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * One Prometheus registry per process (never prom-client's global one, so that the api and the
 * workers can share a process, and tests can build as many as they like). System gauges are
 * refreshed by `render()` just before serialisation, each collector bounded by a timeout, so a
 * scrape answers even while Redis or PostgreSQL is away; `parley_collector_up` says which
 * collectors failed. Role-specific metrics (api-metrics.ts, worker-metrics.ts) add themselves
 * to `registry`.
 */
export function createMetrics(deps: MetricsDeps) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const timeoutMs = deps.collectTimeoutMs ?? 2000;
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] });

  const collectorUp = gauge(
    'parley_collector_up',
    'Whether the collector answered during the last scrape (1) or not (0)',
    ['collector'],
  );
  const queueJobs = gauge('parley_queue_jobs', 'Jobs per queue and state', ['queue', 'state']);
  const redisUsed = gauge('parley_redis_used_memory_bytes', 'Redis INFO used_memory');
  const redisMax = gauge('parley_redis_maxmemory_bytes', 'Redis INFO maxmemory (0 = unbounded)');
  const pgTotal = gauge('parley_pg_pool_connections', "Connections in this process's PostgreSQL pool", ['state']);
  const pgWaiting = gauge('parley_pg_pool_waiting_requests', 'Queries waiting for a pooled PostgreSQL connection');
  const pgMax = gauge('parley_pg_pool_max_connections', "Size limit of this process's PostgreSQL pool");
  pgMax.set(deps.pool.options.max ?? 10);

  const lagGauges = deps.lag
    ? {
        chats: gauge('parley_persistence_lagging_chats', 'Chats with messages acked but not yet in PostgreSQL'),
        pending: gauge('parley_persistence_pending_messages', 'Messages acked but not yet known to be in PostgreSQL'),
        lagSeqs: gauge(
          'parley_persistence_lag_seqs',
          'Sum over chats of newest acked seq minus newest seq in PostgreSQL',
        ),
        maxLagSeqs: gauge(
          'parley_persistence_max_lag_seqs',
          'Largest newest-acked-minus-newest-persisted seq of any chat',
        ),
        oldest: gauge(
          'parley_persistence_oldest_unpersisted_seconds',
          'Age of the oldest message not yet in PostgreSQL',
        ),
      }
    : undefined;
  let lagSample: { at: number; summary: Promise<LagSummary> } | undefined;

  /** The lag summary, sampled at most once per lagMaxAgeMs (a failed sample is not kept). */
  function lagSummary(lag: PersistenceLag): Promise<LagSummary> {
    const now = Date.now();
    if (!lagSample || now - lagSample.at >= deps.lagMaxAgeMs) {
      const summary = lag.summary();
      lagSample = { at: now, summary };
      summary.catch(() => (lagSample = undefined));
    }
    return lagSample.summary;
  }

  const { lag } = deps;
  const collectors: Record<string, () => Promise<void>> = {
    queues: async () => {
      await Promise.all(
        deps.queues.map(async (queue) => {
          const counts = await queue.getJobCounts(...QUEUE_STATES);
          for (const state of QUEUE_STATES) queueJobs.set({ queue: queue.name, state }, counts[state] ?? 0);
        }),
      );
    },
    redis: async () => {
      // On a cluster, the sum over its masters (what the data takes; replicas hold copies).
      const infos = await Promise.all(keyNodes(deps.redis).map((node) => node.info('memory')));
      redisUsed.set(infos.reduce((sum, info) => sum + infoField(info, 'used_memory'), 0));
      redisMax.set(infos.reduce((sum, info) => sum + infoField(info, 'maxmemory'), 0));
    },
    postgres: async () => {
      pgTotal.set({ state: 'total' }, deps.pool.totalCount);
      pgTotal.set({ state: 'idle' }, deps.pool.idleCount);
      pgWaiting.set(deps.pool.waitingCount);
    },
    ...(lag && lagGauges
      ? {
          persistence: async () => {
            const s = await lagSummary(lag);
            lagGauges.chats.set(s.laggingChats);
            lagGauges.pending.set(s.pendingMessages);
            lagGauges.lagSeqs.set(s.lagSeqs);
            lagGauges.maxLagSeqs.set(s.maxLagSeqs);
            lagGauges.oldest.set(s.oldestUnpersistedAgeS);
          },
        }
      : {}),
  };

  async function refresh(): Promise<void> {
    await Promise.all(
      Object.entries(collectors).map(async ([name, collect]) => {
        try {
          await withTimeout(collect(), timeoutMs, `${name} metrics`);
          collectorUp.set({ collector: name }, 1);
        } catch (err) {
          collectorUp.set({ collector: name }, 0);
          deps.logger.debug({ err: errorText(err), collector: name }, 'metrics collector failed');
        }
      }),
    );
  }

  return {
    registry,
    contentType: registry.contentType,
    /** The Prometheus text exposition, with system gauges refreshed first. */
    async render(): Promise<string> {
      await refresh();
      return registry.metrics();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A numeric field of an INFO reply (0 when absent). */
function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m?.[1] ? Number(m[1]) : 0;
}
