import { errorText } from '../src/domain/errors.js';
import { type CostStats, costOf } from './cost.js';
import { samplePercentile } from './histogram.js';
import { type LoadWorld, type PhaseProgress, type PhaseResult, type PhaseSpec, runPhase } from './load.js';
import { cpuSeconds, type MachineCpu, type ProcStats, ProcWatch } from './proc-stats.js';
import { persistBacklog, persistCounters, scrape, scrapeAll, type Series, sumOf } from './prom.js';
import { type RedisCost, redisCost } from './redis-stats.js';
import {
  bucketDelta,
  bucketsOf,
  quantileBound,
  type RuntimeStats,
  runtimeOver,
  scrapeRuntime,
} from './runtime-stats.js';
import { apiCounters, type ScaleStats, scaleOf } from './scale.js';
import type { Target } from './setup.js';

export interface PersistenceStats {
  /** parley_persistence_oldest_unpersisted_seconds polled from the api during the phase, in ms. */
  lagP50Ms: number | null;
  lagP99Ms: number | null;
  lagMaxMs: number | null;
  lagSamples: number;
  /**
   * Each message's persistence lag (acceptance to its batch committed), from the workers'
   * `parley_persist_lag_seconds` histogram over the phase: bucket bounds, in ms.
   */
  perMessageP50Ms: number | null;
  perMessageP99Ms: number | null;
  perMessageMaxMs: number | null;
  /** Largest parley_persistence_pending_messages seen. */
  maxPending: number | null;
  /**
   * From the last send until PostgreSQL held every acked message (`rows`), or, without access to
   * the database, until the persist queue was empty (`queue`); null when not within 30 s.
   */
  drainMs: number | null;
  drainBy: 'rows' | 'queue' | null;
  /** Messages per INSERT over the phase (the workers' parley_persist_* counters). */
  rowsPerInsert: number | null;
  inserts: number | null;
}

export interface MeasuredPhase extends PhaseResult {
  persistence: PersistenceStats;
  /** Redis's own accounting of the phase (warm-up excluded), per acked message. */
  redis: RedisCost | null;
  /** CPU% and RSS over the load: the servers, the generator, and Redis and PostgreSQL when local. */
  processes: ProcStats[];
  /** The whole machine's CPU over the load (everything above plus the kernel's network work, and anything else). */
  machine: MachineCpu | null;
  /** The servers' CPU per message sent and their RSS together. */
  cost: CostStats;
  /** Each server process's event-loop delay and GC pauses over the load, from its /metrics histograms (none for the floor). */
  runtime: RuntimeStats[];
  /**
   * Per api: the chat payloads it received from Redis against the messages of the chats it
   * holds; per process: CPU per delivered message, from the load's start until everything was
   * delivered and stored (scale.ts).
   */
  scale: ScaleStats;
}

const DRAIN_GIVE_UP_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the api's persistence gauges until stopped. */
function startLagSampler(metricsUrl: string | undefined, everyMs: number) {
  const lagMs: number[] = [];
  let maxPending: number | null = null;
  let running = metricsUrl !== undefined;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const s = await scrape(metricsUrl!);
        if (s.some((x) => x.name === 'parley_persistence_oldest_unpersisted_seconds')) {
          lagMs.push(Math.round(sumOf(s, 'parley_persistence_oldest_unpersisted_seconds') * 1000));
          maxPending = Math.max(maxPending ?? 0, sumOf(s, 'parley_persistence_pending_messages'));
        }
      } catch (err) {
        console.error(`bench: scrape of ${metricsUrl} failed: ${errorText(err)}`);
      }
      await sleep(Math.max(0, everyMs - (performance.now() - started)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { lagMs, maxPending };
    },
  };
}

/** Waits until the persistence of everything acked is done; resolves with how long it took. */
async function waitDrained(
  target: Target,
  rowsBefore: number | null,
  progress: PhaseProgress,
  since: number,
): Promise<{ ms: number | null; by: 'rows' | 'queue' | null }> {
  // The floor persists nothing: nothing to wait for.
  const by = target.countRows && rowsBefore !== null ? 'rows' : target.apiMetricsUrls.length > 0 ? 'queue' : null;
  if (!by) return { ms: null, by };
  while (performance.now() - since < DRAIN_GIVE_UP_MS) {
    try {
      const done =
        by === 'rows'
          ? progress.answered && (await target.countRows!()) >= rowsBefore! + progress.acked
          : progress.answered && persistBacklog(await scrape(target.apiMetricsUrls[0]!)) === 0;
      if (done) return { ms: Math.round(performance.now() - since), by };
    } catch (err) {
      console.error(`bench: drain check failed: ${errorText(err)}`);
    }
    await sleep(by === 'rows' ? 20 : 100);
  }
  return { ms: null, by };
}

/**
 * A load phase with everything around it: the processes' CPU and RSS over the load, the servers'
 * event-loop delay and GC pauses (their /metrics scraped before and as the load ends), the
 * persistence lag (each message's, from the workers' histogram, and the oldest unpersisted, polled),
 * the drain after the load, and rows per INSERT.
 */
export async function measuredPhase(
  target: Target,
  world: LoadWorld,
  spec: PhaseSpec,
  scrapeMs: number,
): Promise<MeasuredPhase> {
  const watch = new ProcWatch([...target.processes, { label: 'generator', pid: process.pid }, ...target.services()]);
  const rowsBefore = target.countRows ? await target.countRows() : null;
  const countersBefore = await persistCounters(target.workerMetricsUrls).catch(() => null);
  const redisBefore = await target.redisCommandStats?.().catch(() => null);
  const runtimeBefore = await scrapeRuntime(target.runtimeSources);
  let runtimeAfter: Promise<Awaited<ReturnType<typeof scrapeRuntime>>> = Promise.resolve([]);
  // The lag gauges cost a SCAN of Redis: sampled from a worker's /metrics (which caches them for
  // METRICS_LAG_MAX_AGE_MS), off the api's event loop.
  const metricsUrl = target.workerMetricsUrls[0] ?? target.apiMetricsUrls[0];
  const lagBefore = await scrapeAll(target.workerMetricsUrls).catch(() => null);
  const scrapeApis = () => Promise.all(target.apiMetricsUrls.map((u) => scrape(u).catch((): Series[] | null => null)));
  const apisBefore = await scrapeApis();
  // CPU for the scale figures: from the load's start until every ack and delivery is in and
  // PostgreSQL holds everything (the load window of `processes` leaves out the tail of the work).
  let cpuStart: (number | null)[] = [];
  let startedAt = 0;
  let lag: ReturnType<typeof startLagSampler> | undefined;
  let processes: ProcStats[] = [];
  let drain: Promise<{ ms: number | null; by: 'rows' | 'queue' | null }> = Promise.resolve({ ms: null, by: null });

  const phase = await runPhase(world, spec, {
    started: () => {
      startedAt = performance.now();
      cpuStart = target.processes.map((p) => cpuSeconds(p.pid));
      watch.start();
      lag = startLagSampler(metricsUrl, scrapeMs);
    },
    loadEnded: (progress) => {
      processes = watch.stop();
      runtimeAfter = scrapeRuntime(target.runtimeSources);
      drain = waitDrained(target, rowsBefore, progress, performance.now());
    },
  });
  const drained = await drain;
  const windowMs = performance.now() - startedAt;
  const cpuEnd = target.processes.map((p) => cpuSeconds(p.pid));
  const runtime = runtimeOver(target.runtimeSources, runtimeBefore, await runtimeAfter);
  const sampled = await lag!.stop();
  const countersAfter = await persistCounters(target.workerMetricsUrls).catch(() => null);
  const lagAfter = await scrapeAll(target.workerMetricsUrls).catch(() => null);
  const perMessage =
    lagBefore && lagAfter
      ? bucketDelta(
          bucketsOf(lagBefore, 'parley_persist_lag_seconds'),
          bucketsOf(lagAfter, 'parley_persist_lag_seconds'),
        )
      : [];
  const boundMs = (q: number) => {
    const b = quantileBound(perMessage, q);
    return b === null ? null : Number.isFinite(b) ? Math.round(b * 1000) : b;
  };
  const redisAfter = await target.redisCommandStats?.().catch(() => null);
  const apisAfter = await scrapeApis();
  const inserts = countersBefore && countersAfter ? countersAfter.batches - countersBefore.batches : null;
  const rows = countersBefore && countersAfter ? countersAfter.messages - countersBefore.messages : null;

  return {
    ...phase,
    persistence: {
      lagP50Ms: samplePercentile(sampled.lagMs, 50),
      lagP99Ms: samplePercentile(sampled.lagMs, 99),
      lagMaxMs: samplePercentile(sampled.lagMs, 100),
      lagSamples: sampled.lagMs.length,
      perMessageP50Ms: boundMs(0.5),
      perMessageP99Ms: boundMs(0.99),
      perMessageMaxMs: boundMs(1),
      maxPending: sampled.maxPending,
      drainMs: drained.ms,
      drainBy: drained.by,
      rowsPerInsert: inserts && rows !== null ? Math.round((rows / inserts) * 10) / 10 : null,
      inserts,
    },
    // With changes, per operation: a change costs the servers as a send does.
    redis:
      redisBefore && redisAfter ? redisCost(redisBefore, redisAfter, phase.acked + (phase.changes?.acked ?? 0)) : null,
    processes,
    machine: watch.machine,
    cost: costOf(
      processes,
      target.processes.map((p) => p.label),
      phase.sent + (phase.changes?.sent ?? 0),
    ),
    runtime,
    scale: scaleOf({
      windowMs,
      chatOf: world.chatOf,
      apiOf: world.apiOf,
      apiLabels: target.apiLabels,
      ackedByChat: phase.ackedByChat,
      changesAckedByChat: phase.changesAckedByChat,
      deliveredByApi: phase.deliveredByApi,
      counters: target.apiLabels.map((_, i) => apiCounters(apisBefore[i] ?? null, apisAfter[i] ?? null)),
      cpu: target.processes.map((p, i) => {
        const a = cpuStart[i];
        const b = cpuEnd[i];
        return { label: p.label, cpuSeconds: a == null || b == null ? null : Math.round((b - a) * 100) / 100 };
      }),
    }),
  };
}

/** What makes a phase a failure whatever its latency: anything lost or duplicated. */
export function lossProblems(p: PhaseResult): string[] {
  const out: string[] = [];
  if (p.unanswered > 0) out.push(`${p.unanswered} sends never answered`);
  if (p.lostDeliveries > 0) out.push(`${p.lostDeliveries} deliveries lost`);
  if (p.duplicates > 0) out.push(`${p.duplicates} duplicates`);
  if (p.misrouted > 0) out.push(`${p.misrouted} misrouted frames`);
  if (p.refused > 0)
    out.push(
      `${p.refused} sends refused (${Object.entries(p.errors)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')})`,
    );
  const c = p.changes;
  if (c) {
    if (c.unanswered > 0) out.push(`${c.unanswered} changes never answered`);
    if (c.lostUpdates > 0) out.push(`${c.lostUpdates} message.updated deliveries lost`);
    if (c.refused > 0)
      out.push(
        `${c.refused} changes refused (${Object.entries(c.errors)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ')})`,
      );
  }
  return out;
}
