import type { BenchOptions } from './cli.js';
import { median, type Percentiles } from './histogram.js';
import type { MeasuredPhase } from './measure.js';
import type { MachineCpu, ProcStats } from './proc-stats.js';
import type { IdleResult } from './scenarios/idle.js';
import type { SmallResult } from './scenarios/small.js';
import type { StressResult } from './scenarios/stress.js';
import type { Throwaway } from './setup.js';

export type RunResult = SmallResult | StressResult | IdleResult;

/**
 * The per-field median of results of the same shape: numbers (nulls skipped), nested objects and
 * arrays matched by position (process lists keep their order across runs); anything else is
 * taken from the first run.
 */
export function deepMedian(xs: readonly unknown[]): unknown {
  const first = xs.find((x) => x !== null && x !== undefined);
  if (first === undefined) return null;
  if (typeof first === 'number') return median(xs as (number | null)[]);
  if (Array.isArray(first)) {
    const len = Math.min(...xs.filter(Array.isArray).map((a) => a.length));
    return Array.from({ length: len }, (_, i) => deepMedian(xs.map((x) => (Array.isArray(x) ? x[i] : undefined))));
  }
  if (typeof first === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first)) out[key] = deepMedian(xs.map((x) => (x as Record<string, unknown> | null)?.[key]));
    return out;
  }
  return first;
}

/** What `--json` prints and the text report is made from. */
export interface Summary {
  scenario: string;
  options: BenchOptions;
  runs: RunResult[];
  /** Per run, the throwaway database and prefixes the bench used (null with --url); all removed afterwards. */
  throwaway: (Throwaway | null)[];
  /** Medians over the runs (stress: of the held rate, and of the held step's figures in the runs that held it). */
  median: unknown;
  ok: boolean;
  problems: string[];
}

export function summarise(options: BenchOptions, runs: RunResult[], throwaway: (Throwaway | null)[]): Summary {
  const problems = runs.flatMap((r, i) => r.problems.map((p) => `run ${i + 1}: ${p}`));
  let med: unknown;
  if (options.scenario === 'stress') {
    const stress = runs as StressResult[];
    const heldRate = median(stress.map((r) => r.heldRate));
    // The figures at the median held rate come from the runs that held exactly that rate.
    const atMedian = stress.filter((r) => r.heldRate === heldRate);
    med = { heldRate, heldStep: deepMedian((atMedian.length ? atMedian : stress).map((r) => r.heldStep)) };
  } else if (options.scenario === 'small') {
    med = { phase: deepMedian((runs as SmallResult[]).map((r) => r.phase)) };
  } else {
    med = deepMedian(runs);
  }
  return { scenario: options.scenario, options, runs, throwaway, median: med, ok: problems.length === 0, problems };
}

/** How the processes the bench started ran, as the report and the progress lines say it. */
export const RUNTIME: Record<BenchOptions['runtime'], string> = { compiled: 'compiled (dist/)', tsx: 'from the sources (tsx)' };

const f = (x: number | null | undefined, digits = 2) => (x === null || x === undefined ? '-' : x.toFixed(digits));
const pad = (s: string, n: number) => s.padStart(n);

function percentileRows(p: Pick<MeasuredPhase, 'ack' | 'fanout' | 'ackFromSend' | 'fanoutFromSend' | 'lateness'>): string[] {
  const row = (name: string, x: Percentiles) =>
    `  ${name.padEnd(24)}${[x.p50, x.p90, x.p99, x.p999, x.max].map((v) => pad(f(v, 3), 9)).join('')}${pad(String(x.count), 10)}`;
  return [
    `  ${'latency, ms'.padEnd(24)}${['p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => pad(h, 9)).join('')}${pad('count', 10)}`,
    row('ack', p.ack),
    row('fan-out', p.fanout),
    row('ack, from actual send', p.ackFromSend),
    row('fan-out, from send', p.fanoutFromSend),
    row('generator lateness', p.lateness),
  ];
}

function processLine(ps: readonly ProcStats[], machine: MachineCpu | null): string {
  const all = machine ? ` · machine ${f(machine.busyPct, 0)}% of ${machine.cores * 100}% (not in these processes: ${f(machine.otherPct, 0)}%; steal ${f(machine.stealPct, 1)}%)` : '';
  return `  cpu (% of one core) and rss over the load: ${ps.map((p) => `${p.label} ${f(p.cpuPct, 1)}%${p.rssMB === null ? '' : ` ${f(p.rssMB, 0)} MB`}`).join(' · ')}${all}`;
}

function phaseLines(p: MeasuredPhase): string[] {
  const s = p.persistence;
  const errors = Object.entries(p.errors ?? {}).map(([c, n]) => `${c} ${n}`).join(', ');
  return [
    `  ${f(p.sent, 0)} sent at ${f(p.sendRate, 0)}/s (target ${f(p.rate, 0)}/s), ${f(p.acked, 0)} acked at ${f(p.ackRate, 0)}/s; ` +
      `lost: ${f(p.unanswered, 0)} unanswered + ${f(p.lostDeliveries, 0)} deliveries; duplicates ${f(p.duplicates, 0)}; refused ${f(p.refused, 0)}${errors ? ` (${errors})` : ''}`,
    ...percentileRows(p),
    `  persistence: lag (oldest unpersisted) p50 ${f(s.lagP50Ms, 0)} ms, p99 ${f(s.lagP99Ms, 0)} ms, max ${f(s.lagMaxMs, 0)} ms over ${f(s.lagSamples, 0)} samples; ` +
      `max pending ${f(s.maxPending, 0)}; drained ${f(s.drainMs, 0)} ms after the load (${s.drainBy ?? 'not measured'}); ` +
      `${f(s.rowsPerInsert, 1)} rows per INSERT (${f(s.inserts, 0)} INSERTs)`,
    processLine(p.processes, p.machine),
    ...(p.redis
      ? [`  redis per message: ${f(p.redis.usecPerMessage, 0)} µs of command time, ${f(p.redis.scriptsPerMessage, 1)} script calls, ${f(p.redis.callsPerMessage, 1)} commands counting those scripts run (${p.redis.top})`]
      : []),
  ];
}

function stressTable(r: StressResult): string[] {
  const head = ['rate', 'sent/s', 'ack p50', 'ack p99', 'fan p50', 'fan p99', 'fan max', 'lag max', 'drain', 'rows/INS', 'cpu api', 'cpu wrk', 'cpu gen', 'cpu rds', 'cpu pg', 'machine', ''];
  const cpu = (s: MeasuredPhase, prefix: string) =>
    s.processes.filter((p) => p.label.startsWith(prefix)).reduce((a, p) => a + (p.cpuPct ?? 0), 0);
  const lines = [`  ${head.map((h) => pad(h, 9)).join('')}`];
  for (const s of r.steps) {
    const cells = [f(s.rate, 0), f(s.sendRate, 0), f(s.ack.p50), f(s.ack.p99), f(s.fanout.p50), f(s.fanout.p99), f(s.fanout.max), f(s.persistence.lagMaxMs, 0), f(s.persistence.drainMs, 0), f(s.persistence.rowsPerInsert, 1), f(cpu(s, 'api'), 0), f(cpu(s, 'worker'), 0), f(cpu(s, 'generator'), 0), f(cpu(s, 'redis'), 0), f(cpu(s, 'postgres'), 0), f(s.machine?.busyPct, 0), s.held ? 'held' : 'FAILED'];
    lines.push(`  ${cells.map((c) => pad(c, 9)).join('')}`);
  }
  lines.push(`  highest rate held: ${r.heldRate ?? 'none'} msg/s${r.stoppedBecause.length ? `; stopped at ${r.steps.at(-1)!.rate} msg/s: ${r.stoppedBecause.join('; ')}` : ' (reached --max-rate)'}`);
  return lines;
}

function idleLines(r: IdleResult): string[] {
  return [
    `  ${f(r.connections, 0)} connections (${f(r.requested, 0)} asked) of ${f(r.users, 0)} users, opened in ${f(r.connectSeconds, 1)} s`,
    `  api rss ${f(r.rssBeforeMB, 1)} MB → ${f(r.rssAfterMB, 1)} MB: ${f(r.rssPerConnectionKB, 2)} KB per connection (V8 heap ${f(r.heapPerConnectionKB, 2)} KB)`,
    `  over ${f(r.idleS, 0)} s idle (WS_HEARTBEAT_MS ${r.heartbeatMs}): api ${f(r.apiCpuPct, 1)}% of one core, workers ${f(r.workerCpuPct, 1)}%; ${f(r.closedByServer, 0)} closed by the server`,
  ];
}

export function formatText(s: Summary): string {
  const o = s.options;
  const setup = o.urls.length ? `against ${o.urls.join(', ')}` : `${o.apis} api, ${o.workers} worker process(es) ${RUNTIME[o.runtime]}`;
  const load = o.scenario === 'idle' ? `${o.connections} idle connections` : `${o.clients} clients in chats of ${o.chatSize}`;
  const out = [`parley bench · ${o.scenario} · ${setup} · ${load}`];
  s.runs.forEach((r, i) => {
    out.push(`run ${i + 1} of ${s.runs.length}:`);
    if (r.scenario === 'small') out.push(...phaseLines(r.phase));
    else if (r.scenario === 'stress') out.push(...stressTable(r));
    else out.push(...idleLines(r));
  });
  if (s.runs.length > 1) {
    out.push(`median of ${s.runs.length} runs:`);
    const m = s.median as { phase?: MeasuredPhase; heldRate?: number; heldStep?: MeasuredPhase };
    if (o.scenario === 'small' && m.phase) out.push(...phaseLines(m.phase));
    else if (o.scenario === 'stress') {
      out.push(`  highest rate held: ${f(m.heldRate ?? null, 0)} msg/s (runs: ${(s.runs as StressResult[]).map((r) => r.heldRate ?? 'none').join(', ')}); at that rate:`);
      if (m.heldStep) out.push(...phaseLines(m.heldStep));
    } else out.push(...idleLines(s.median as IdleResult));
  } else if (o.scenario === 'stress' && (s.runs[0] as StressResult).heldStep) {
    out.push('at the highest rate held:', ...phaseLines((s.runs[0] as StressResult).heldStep!));
  }
  const okLine = o.scenario === 'idle' ? 'OK: every connection opened and stayed open' : 'OK: nothing lost, nothing duplicated';
  out.push(s.ok ? okLine : `FAILED:\n  ${s.problems.join('\n  ')}`);
  return out.join('\n');
}
