/**
 * `npm run -s bench:markdown -- FILE.json...`: the tables of BENCHMARKS.md from saved
 * `npm run -s bench -- ... --runs 3 --json > FILE.json` outputs (medians of the runs; lost and
 * duplicated summed over them). One table per scenario, one row per file, and a scale-out table
 * (per api and per process: inbound from Redis, CPU per delivered message) of the small and
 * stress files.
 */
import { readFileSync } from 'node:fs';
import type { MeasuredPhase } from './measure.js';
import type { ProcStats } from './proc-stats.js';
import type { Summary } from './report.js';
import type { IdleResult } from './scenarios/idle.js';
import type { SmallResult } from './scenarios/small.js';
import type { StressResult } from './scenarios/stress.js';

const f = (x: number | null | undefined, digits = 1) => (x === null || x === undefined ? '–' : x.toFixed(digits));
const cpu = (ps: readonly ProcStats[], prefix: string) => {
  const mine = ps.filter((p) => p.label.startsWith(prefix) && p.cpuPct !== null);
  return mine.length ? mine.reduce((s, p) => s + p.cpuPct!, 0) : null;
};
const rss = (ps: readonly ProcStats[], prefix: string) => {
  const mine = ps.filter((p) => p.label.startsWith(prefix) && p.rssMB !== null);
  return mine.length ? mine.map((p) => f(p.rssMB, 0)).join(' + ') : '–';
};
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );
const setup = (s: Summary) =>
  s.options.urls.length ? ['url', '–'] : [String(s.options.apis), String(s.options.workers)];
const machineCell = (m: MeasuredPhase | null) =>
  m?.machine ? `${f(m.machine.busyPct, 0)} (${f(m.machine.otherPct, 0)})` : '–';
const redisCell = (m: MeasuredPhase | null) =>
  m?.redis ? `${f(m.redis.usecPerMessage, 0)} µs / ${f(m.redis.scriptsPerMessage, 1)}` : '–';
const lossOf = (phases: readonly MeasuredPhase[]) =>
  phases.reduce(
    (n, p) =>
      n +
      p.unanswered +
      p.lostDeliveries +
      p.refused +
      (p.changes ? p.changes.unanswered + p.changes.lostUpdates + p.changes.refused : 0),
    0,
  ) +
  ' / ' +
  phases.reduce((n, p) => n + p.duplicates, 0);

function smallRow(s: Summary): string[] {
  const m = (s.median as { phase: MeasuredPhase }).phase;
  const ps = m.processes;
  return [
    ...setup(s),
    `${f(m.rate, 0)} × ${f(m.durationS, 0)} s`,
    f(m.ackRate, 0),
    f(m.ack.p50, 2),
    f(m.ack.p99, 2),
    f(m.fanout.p50, 2),
    f(m.fanout.p99, 2),
    f(m.fanout.p999, 2),
    f(m.fanout.max, 1),
    `${f(m.ackFromSend.p50, 2)} / ${f(m.fanoutFromSend.p50, 2)}`,
    `${f(m.lateness.p50, 2)} / ${f(m.lateness.p99, 2)}`,
    lossOf((s.runs as SmallResult[]).map((r) => r.phase)),
    f(m.persistence.lagP99Ms, 0),
    f(m.persistence.drainMs, 0),
    f(m.persistence.rowsPerInsert, 1),
    `${f(cpu(ps, 'api'), 0)} / ${f(cpu(ps, 'worker'), 0)} / ${f(cpu(ps, 'redis'), 0)} / ${f(cpu(ps, 'postgres'), 0)} / ${f(cpu(ps, 'generator'), 0)}`,
    machineCell(m),
    `${rss(ps, 'api')} / ${rss(ps, 'worker')}`,
    redisCell(m),
  ];
}

function stressRow(s: Summary): string[] {
  const runs = s.runs as StressResult[];
  const m = s.median as { heldRate: number | null; heldStep: MeasuredPhase | null };
  const h = m.heldStep;
  const ps = h?.processes ?? [];
  return [
    ...setup(s),
    `**${f(m.heldRate, 0)}** (${runs.map((r) => r.heldRate ?? 'none').join(', ')})`,
    runs
      .map((r) =>
        r.stoppedBecause.length ? `${r.steps.at(-1)!.rate}: ${r.stoppedBecause.join('; ')}` : 'reached --max-rate',
      )
      .join('<br>'),
    f(h?.ack.p50, 2),
    f(h?.ack.p99, 2),
    f(h?.fanout.p50, 2),
    f(h?.fanout.p99, 2),
    f(h?.persistence.lagMaxMs, 0),
    f(h?.persistence.drainMs, 0),
    f(h?.persistence.rowsPerInsert, 1),
    `${f(cpu(ps, 'api'), 0)} / ${f(cpu(ps, 'worker'), 0)} / ${f(cpu(ps, 'redis'), 0)} / ${f(cpu(ps, 'postgres'), 0)} / ${f(cpu(ps, 'generator'), 0)}`,
    machineCell(h),
    redisCell(h),
    lossOf(runs.flatMap((r) => r.steps)),
  ];
}

/** The phase the scale-out row reads: small's median phase, stress's median highest step held. */
const scalePhase = (s: Summary): MeasuredPhase | null =>
  s.scenario === 'small'
    ? ((s.median as { phase?: MeasuredPhase }).phase ?? null)
    : ((s.median as { heldStep?: MeasuredPhase | null }).heldStep ?? null);

function scaleRow(s: Summary): string[] {
  const m = scalePhase(s)!;
  const sc = m.scale;
  const each = (xs: readonly (number | null | undefined)[], digits = 0) => xs.map((x) => f(x, digits)).join(', ');
  const cost = (prefix: string) =>
    each(
      sc.processes.filter((p) => p.label.startsWith(prefix)).map((p) => p.cpuUsPerDelivered),
      1,
    );
  const servers = sc.processes.find((p) => p.label === 'servers');
  return [
    s.scenario === 'small' ? 'small' : `stress (held ${f((s.median as { heldRate: number | null }).heldRate, 0)})`,
    ...setup(s),
    s.options.redisCluster ? 'cluster, 3 masters' : 'one',
    s.options.chatAffinity ? 'chat per api' : 'spread',
    f(m.ackRate, 0),
    f(m.fanout.p99, 2),
    f(sc.messages, 0),
    each(sc.apis.map((a) => a.received?.message)),
    each(sc.apis.map((a) => a.expectedMessages)),
    each(sc.apis.map((a) => a.delivered)),
    `${cost('api') || cost('parley')}; ${cost('worker') || '–'}`,
    `${f(servers?.cpuUsPerDelivered, 1)} (${f(servers?.cpuUsPerMessage, 0)})`,
    machineCell(m),
  ];
}

function idleRow(s: Summary): string[] {
  const m = s.median as IdleResult;
  return [
    `${f(m.connections, 0)} (${f(m.requested, 0)} asked)`,
    f(m.users, 0),
    f(m.connectSeconds, 1),
    `${f(m.rssBeforeMB, 0)} → ${f(m.rssAfterMB, 0)}`,
    f(m.rssPerConnectionKB, 2),
    f(m.heapPerConnectionKB, 2),
    `${f(m.apiCpuPct, 1)} over ${f(m.idleS, 0)} s`,
    m.heartbeatMs,
    f(m.workerCpuPct, 1),
    String((s.runs as IdleResult[]).reduce((n, r) => n + r.closedByServer, 0)),
  ];
}

const summaries = process.argv.slice(2).map((file) => JSON.parse(readFileSync(file, 'utf8')) as Summary);
// Parley's figures: a --target floor summary has none.
const of = (scenario: string) => summaries.filter((s) => s.scenario === scenario && s.runs.length > 0);
const out: string[] = [];
if (of('small').length) {
  out.push(
    table(
      [
        'apis',
        'workers',
        'load',
        'acked/s',
        'ack p50',
        'ack p99',
        'fan-out p50',
        'fan-out p99',
        'p99.9',
        'max',
        'p50 from send: ack / fan-out',
        'generator lateness p50 / p99',
        'lost / dup',
        'lag p99',
        'drain',
        'rows/INSERT',
        'CPU % api / worker / redis / pg / generator',
        'machine CPU % (other)',
        'RSS MB api / worker',
        'Redis per msg: µs / scripts',
      ],
      of('small').map(smallRow),
    ),
  );
}
if (of('stress').length) {
  out.push(
    table(
      [
        'apis',
        'workers',
        'held msg/s (runs)',
        'stopped at',
        'ack p50',
        'ack p99',
        'fan-out p50',
        'fan-out p99',
        'lag max',
        'drain',
        'rows/INSERT',
        'CPU % api / worker / redis / pg / generator',
        'machine CPU % (other)',
        'Redis per msg: µs / scripts',
        'lost / dup',
      ],
      of('stress').map(stressRow),
    ),
  );
}
const scaled = summaries.filter(
  (s) => (s.scenario === 'small' || s.scenario === 'stress') && s.runs.length > 0 && scalePhase(s)?.scale,
);
if (scaled.length) {
  out.push(
    table(
      [
        'scenario',
        'apis',
        'workers',
        'Redis',
        'members',
        'acked/s',
        'fan-out p99',
        'messages',
        'received from Redis per api',
        "its chats' messages per api",
        'delivered per api',
        'CPU µs per delivered: each api; each worker',
        'servers µs per delivered (per message)',
        'machine CPU % (other)',
      ],
      scaled.map(scaleRow),
    ),
  );
}
if (of('idle').length) {
  out.push(
    table(
      [
        'connections',
        'users',
        'connect s',
        'api RSS MB',
        'KB per connection',
        'heap KB per connection',
        'api CPU %',
        'WS_HEARTBEAT_MS',
        'worker CPU %',
        'closed',
      ],
      of('idle').map(idleRow),
    ),
  );
}
console.log(out.join('\n\n'));
