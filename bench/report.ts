import type { BenchOptions } from './cli.js';
import { type Comparison, compareMedians, compareSmall, compareStress } from './compare.js';
import { deepMedian, median, type Percentiles } from './histogram.js';
import type { MeasuredPhase } from './measure.js';
import type { MachineCpu, ProcStats } from './proc-stats.js';
import { comparisonLines, costLine, f, runtimeLine, scaleLines } from './report-lines.js';
import type { IdleResult } from './scenarios/idle.js';
import type { SmallResult } from './scenarios/small.js';
import type { StressResult } from './scenarios/stress.js';
import type { Throwaway } from './setup.js';

export type RunResult = SmallResult | StressResult | IdleResult;

/** One target's runs: Parley's, or the floor's. */
export interface TargetRuns {
  runs: RunResult[];
  /** Per run, the throwaway database and prefixes the bench used (null with --url); all removed afterwards. */
  throwaway: (Throwaway | null)[];
  /** Medians over the runs (stress: of the held rate, and of the held step's figures in the runs that held it). */
  median: unknown;
}

/**
 * What `--json` prints and the text report is made from. `runs`, `throwaway` and `median` are
 * Parley's (empty with --target floor).
 */
export interface Summary extends TargetRuns {
  scenario: string;
  options: BenchOptions;
  /** The floor's, each run started just before Parley's of the same number (null with --target parley). */
  floor: TargetRuns | null;
  /** Parley / floor, per run (paired by number) and of the medians; null unless both were measured. */
  comparison: { runs: Comparison[]; median: Comparison | null } | null;
  ok: boolean;
  problems: string[];
}

/** The medians of one target's runs. */
export function medianOf(scenario: BenchOptions['scenario'], runs: readonly RunResult[]): unknown {
  if (runs.length === 0) return null;
  if (scenario === 'stress') {
    const stress = runs as StressResult[];
    const heldRate = median(stress.map((r) => r.heldRate));
    // The figures at the median held rate come from the runs that held exactly that rate.
    const atMedian = stress.filter((r) => r.heldRate === heldRate);
    return { heldRate, heldStep: deepMedian((atMedian.length ? atMedian : stress).map((r) => r.heldStep)) };
  }
  if (scenario === 'small') return { phase: deepMedian((runs as SmallResult[]).map((r) => r.phase)) };
  return deepMedian(runs);
}

export interface Measured {
  runs: RunResult[];
  throwaway: (Throwaway | null)[];
}

export function summarise(options: BenchOptions, parley: Measured, floor: Measured | null): Summary {
  const problems = [
    ...(floor?.runs ?? []).flatMap((r, i) => r.problems.map((p) => `floor run ${i + 1}: ${p}`)),
    ...parley.runs.flatMap((r, i) => r.problems.map((p) => `run ${i + 1}: ${p}`)),
  ];
  const med = medianOf(options.scenario, parley.runs);
  const floorRuns = floor ? { ...floor, median: medianOf(options.scenario, floor.runs) } : null;
  let comparison: Summary['comparison'] = null;
  if (floor && floor.runs.length > 0 && parley.runs.length > 0 && options.scenario !== 'idle') {
    const pairs = parley.runs
      .map((p, i) => [floor.runs[i], p] as const)
      .filter((x): x is readonly [RunResult, RunResult] => x[0] !== undefined);
    comparison = {
      runs: pairs.map(([f, p]) =>
        options.scenario === 'small'
          ? compareSmall(f as SmallResult, p as SmallResult)
          : compareStress(f as StressResult, p as StressResult),
      ),
      median: compareMedians(options.scenario, floor.runs, parley.runs, med),
    };
  }
  return {
    scenario: options.scenario,
    options,
    runs: parley.runs,
    throwaway: parley.throwaway,
    median: med,
    floor: floorRuns,
    comparison,
    ok: problems.length === 0,
    problems,
  };
}

/** How the processes the bench started ran, as the report and the progress lines say it. */
export const RUNTIME: Record<BenchOptions['runtime'], string> = {
  compiled: 'compiled (dist/)',
  tsx: 'from the sources (tsx)',
};

const pad = (s: string, n: number) => s.padStart(n);

function percentileRows(
  p: Pick<MeasuredPhase, 'ack' | 'fanout' | 'ackFromSend' | 'fanoutFromSend' | 'lateness' | 'changes'>,
): string[] {
  const width = p.changes ? 34 : 24;
  const row = (name: string, x: Percentiles) =>
    `  ${name.padEnd(width)}${[x.p50, x.p90, x.p99, x.p999, x.max].map((v) => pad(f(v, 3), 9)).join('')}${pad(String(x.count), 10)}`;
  const c = p.changes;
  return [
    `  ${'latency, ms'.padEnd(width)}${['p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => pad(h, 9)).join('')}${pad('count', 10)}`,
    row(c ? 'ack (sends)' : 'ack', p.ack),
    row(c ? 'fan-out (message)' : 'fan-out', p.fanout),
    ...(c ? [row('change ack', c.ack), row('change fan-out (message.updated)', c.fanout)] : []),
    row('ack, from actual send', p.ackFromSend),
    row('fan-out, from send', p.fanoutFromSend),
    ...(c ? [row('change ack, from send', c.ackFromSend), row('change fan-out, from send', c.fanoutFromSend)] : []),
    row('generator lateness', p.lateness),
  ];
}

function changeLine(p: MeasuredPhase): string[] {
  const c = p.changes;
  if (!c) return [];
  const errors = Object.entries(c.errors ?? {})
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  const ops = p.sent + c.sent;
  return [
    `  changes: ${f(c.sent, 0)} (${f(c.edits, 0)} edits, ${f(c.reactions, 0)} reactions on or off; ${f(ops > 0 ? (100 * c.sent) / ops : null, 1)} % of the operations, asked ${f(100 * c.share, 0)} %), ${f(c.acked, 0)} acked; ` +
      `lost: ${f(c.unanswered, 0)} unanswered + ${f(c.lostUpdates, 0)} message.updated deliveries; refused ${f(c.refused, 0)}${errors ? ` (${errors})` : ''}`,
  ];
}

function processLine(ps: readonly ProcStats[], machine: MachineCpu | null): string {
  const all = machine
    ? ` · machine ${f(machine.busyPct, 0)}% of ${machine.cores * 100}% (not in these processes: ${f(machine.otherPct, 0)}%; steal ${f(machine.stealPct, 1)}%)`
    : '';
  return `  cpu (% of one core) and rss over the load: ${ps.map((p) => `${p.label} ${f(p.cpuPct, 1)}%${p.rssMB === null ? '' : ` ${f(p.rssMB, 0)} MB`}`).join(' · ')}${all}`;
}

function phaseLines(p: MeasuredPhase): string[] {
  const s = p.persistence;
  const errors = Object.entries(p.errors ?? {})
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  // The floor persists nothing: no lag, no drain, no INSERTs.
  const persisted = s.lagSamples > 0 || s.drainBy !== null || s.inserts !== null;
  return [
    p.changes
      ? `  ${f(p.sent + p.changes.sent, 0)} operations at ${f(p.sendRate, 0)}/s (target ${f(p.rate, 0)}/s), ${f(p.acked + p.changes.acked, 0)} acked at ${f(p.ackRate, 0)}/s; ` +
        `messages: ${f(p.sent, 0)} sent, ${f(p.acked, 0)} acked; lost: ${f(p.unanswered, 0)} unanswered + ${f(p.lostDeliveries, 0)} deliveries; duplicates ${f(p.duplicates, 0)}; refused ${f(p.refused, 0)}${errors ? ` (${errors})` : ''}`
      : `  ${f(p.sent, 0)} sent at ${f(p.sendRate, 0)}/s (target ${f(p.rate, 0)}/s), ${f(p.acked, 0)} acked at ${f(p.ackRate, 0)}/s; ` +
        `lost: ${f(p.unanswered, 0)} unanswered + ${f(p.lostDeliveries, 0)} deliveries; duplicates ${f(p.duplicates, 0)}; refused ${f(p.refused, 0)}${errors ? ` (${errors})` : ''}`,
    ...changeLine(p),
    ...percentileRows(p),
    ...(persisted
      ? [
          `  persistence: lag per message p50 ≤ ${f(s.perMessageP50Ms, 0)} ms, p99 ≤ ${f(s.perMessageP99Ms, 0)} ms, max ≤ ${f(s.perMessageMaxMs, 0)} ms; ` +
            `oldest unpersisted p50 ${f(s.lagP50Ms, 0)} ms, p99 ${f(s.lagP99Ms, 0)} ms, max ${f(s.lagMaxMs, 0)} ms over ${f(s.lagSamples, 0)} samples; ` +
            `max pending ${f(s.maxPending, 0)}; drained ${f(s.drainMs, 0)} ms after the load (${s.drainBy ?? 'not measured'}); ` +
            `${f(s.rowsPerInsert, 1)} rows per INSERT (${f(s.inserts, 0)} INSERTs)`,
        ]
      : []),
    processLine(p.processes, p.machine),
    ...costLine(p.cost, p.changes ? 'operation (send or change)' : 'message'),
    ...scaleLines(p.scale),
    ...runtimeLine(p.runtime),
    ...(p.redis
      ? [
          `  redis per ${p.changes ? 'operation' : 'message'}: ${f(p.redis.usecPerMessage, 0)} µs of command time, ${f(p.redis.scriptsPerMessage, 1)} script calls, ${f(p.redis.callsPerMessage, 1)} commands counting those scripts run (${p.redis.top})`,
        ]
      : []),
  ];
}

function stressTable(r: StressResult): string[] {
  // cpu srv: the target's server processes together (api and workers, or the floor's relays).
  const head = [
    'rate',
    'sent/s',
    'ack p50',
    'ack p99',
    'fan p50',
    'fan p99',
    'fan max',
    'lag max',
    'drain',
    'rows/INS',
    'cpu srv',
    'µs/msg',
    'cpu gen',
    'cpu rds',
    'cpu pg',
    'machine',
    '',
  ];
  const cpu = (s: MeasuredPhase, ...labels: string[]) =>
    s.processes.filter((p) => labels.includes(p.label)).reduce((a, p) => a + (p.cpuPct ?? 0), 0);
  const lines = [`  ${head.map((h) => pad(h, 9)).join('')}`];
  for (const s of r.steps) {
    const cells = [
      f(s.rate, 0),
      f(s.sendRate, 0),
      f(s.ack.p50),
      f(s.ack.p99),
      f(s.fanout.p50),
      f(s.fanout.p99),
      f(s.fanout.max),
      f(s.persistence.lagMaxMs, 0),
      f(s.persistence.drainMs, 0),
      f(s.persistence.rowsPerInsert, 1),
      f(cpu(s, ...(s.cost?.servers ?? [])), 0),
      f(s.cost?.cpuUsPerMessage, 0),
      f(cpu(s, 'generator'), 0),
      f(cpu(s, 'redis'), 0),
      f(cpu(s, 'postgres'), 0),
      f(s.machine?.busyPct, 0),
      s.held ? 'held' : 'FAILED',
    ];
    lines.push(`  ${cells.map((c) => pad(c, 9)).join('')}`);
  }
  lines.push(
    `  highest rate held: ${r.heldRate ?? 'none'} msg/s${r.stoppedBecause.length ? `; stopped at ${r.steps.at(-1)!.rate} msg/s: ${r.stoppedBecause.join('; ')}` : ' (reached --max-rate)'}`,
  );
  return lines;
}

function idleLines(r: IdleResult): string[] {
  return [
    `  ${f(r.connections, 0)} connections (${f(r.requested, 0)} asked) of ${f(r.users, 0)} users, opened in ${f(r.connectSeconds, 1)} s`,
    `  api rss ${f(r.rssBeforeMB, 1)} MB → ${f(r.rssAfterMB, 1)} MB: ${f(r.rssPerConnectionKB, 2)} KB per connection (V8 heap ${f(r.heapPerConnectionKB, 2)} KB)`,
    `  over ${f(r.idleS, 0)} s idle (WS_HEARTBEAT_MS ${r.heartbeatMs}): api ${f(r.apiCpuPct, 1)}% of one core, workers ${f(r.workerCpuPct, 1)}%; ${f(r.closedByServer, 0)} closed by the server`,
  ];
}

/** One target's runs, or their medians, as the text report prints them. */
function runLines(o: BenchOptions, r: RunResult): string[] {
  if (r.scenario === 'small') return phaseLines(r.phase);
  if (r.scenario === 'stress') {
    const held = o.runs === 1 && r.heldStep ? ['  at the highest rate held:', ...phaseLines(r.heldStep)] : [];
    return [...stressTable(r), ...held];
  }
  return idleLines(r);
}

function medianLines(o: BenchOptions, t: TargetRuns): string[] {
  const m = t.median as { phase?: MeasuredPhase; heldRate?: number; heldStep?: MeasuredPhase };
  if (o.scenario === 'small') return m.phase ? phaseLines(m.phase) : [];
  if (o.scenario === 'stress') {
    return [
      `  highest rate held: ${f(m.heldRate ?? null, 0)} msg/s (runs: ${(t.runs as StressResult[]).map((r) => r.heldRate ?? 'none').join(', ')}); at that rate:`,
      ...(m.heldStep ? phaseLines(m.heldStep) : []),
    ];
  }
  return idleLines(t.median as IdleResult);
}

export function formatText(s: Summary): string {
  const o = s.options;
  const layout =
    (o.allInOne ? 'api and workers in one process (npm start)' : `${o.apis} api, ${o.workers} worker process(es)`) +
    (o.redisCluster ? ' on a private 3-master Redis Cluster' : '');
  const parts = [`parley bench · ${o.scenario}`];
  if (o.target !== 'floor')
    parts.push(o.urls.length ? `against ${o.urls.join(', ')}` : `${layout} ${RUNTIME[o.runtime]}`);
  if (o.target !== 'parley') parts.push(`the floor: ${o.apis} relay process(es)`);
  parts.push(
    o.scenario === 'idle'
      ? `${o.connections} idle connections`
      : `${o.clients} clients in chats of ${o.chatSize}${o.chatAffinity ? ', each chat on one api' : ''}`,
  );
  const out = [parts.join(' · ')];
  const n = Math.max(s.runs.length, s.floor?.runs.length ?? 0);
  for (let i = 0; i < n; i++) {
    const fr = s.floor?.runs[i];
    const pr = s.runs[i];
    if (fr) out.push(`run ${i + 1} of ${n}, floor:`, ...runLines(o, fr));
    if (pr) out.push(`run ${i + 1} of ${n}${s.floor ? ', parley' : ''}:`, ...runLines(o, pr));
    const c = s.comparison?.runs[i];
    if (c) out.push(`run ${i + 1} of ${n}, parley / floor:`, ...comparisonLines(c));
  }
  if (n > 1) {
    if (s.floor) out.push(`median of ${n} runs, floor:`, ...medianLines(o, s.floor));
    if (s.runs.length) out.push(`median of ${n} runs${s.floor ? ', parley' : ''}:`, ...medianLines(o, s));
    if (s.comparison?.median)
      out.push(`median of ${n} runs, parley / floor (ratios of the medians):`, ...comparisonLines(s.comparison.median));
  }
  const okLine =
    o.scenario === 'idle' ? 'OK: every connection opened and stayed open' : 'OK: nothing lost, nothing duplicated';
  out.push(s.ok ? okLine : `FAILED:\n  ${s.problems.join('\n  ')}`);
  return out.join('\n');
}
