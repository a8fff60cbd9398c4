import { type Comparison, FIGURES, type Figure } from './compare.js';
import type { CostStats } from './cost.js';
import type { RuntimeStats } from './runtime-stats.js';
import { inboundMismatches, type ScaleStats } from './scale.js';

/** Lines of the text report for the floor comparison, the cost per message and the runtime histograms. */

export const f = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined ? '-' : x.toFixed(digits);
const pad = (s: string, n: number) => s.padStart(n);

/** A bucket bound as the report says it: at or below it, or past the last bound. */
const bound = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? '-' : Number.isFinite(ms) ? `≤ ${ms}` : '> 1000';

const DIGITS: Partial<Record<Figure, number>> = {
  heldRate: 0,
  cpuUsPerMessage: 0,
  systemCpuUsPerMessage: 0,
  serverRssMB: 0,
};

export function comparisonLines(c: Comparison): string[] {
  const at = c.rate === null ? '' : ` at ${c.rate} msg/s`;
  const lines = [`  ${`parley / floor${at}`.padEnd(44)}${pad('floor', 10)}${pad('parley', 10)}${pad('ratio', 9)}`];
  for (const [key, pair] of Object.entries(c.figures) as [Figure, NonNullable<Comparison['figures'][Figure]>][]) {
    const digits = DIGITS[key] ?? 2;
    lines.push(
      `  ${FIGURES[key].padEnd(44)}${pad(f(pair.floor, digits), 10)}${pad(f(pair.parley, digits), 10)}${pad(pair.ratio === null ? '-' : `${pair.ratio.toFixed(2)}×`, 9)}`,
    );
  }
  return lines;
}

export function costLine(c: CostStats | undefined, per = 'message'): string[] {
  if (!c) return [];
  const servers = c.servers.join(' + ');
  return [
    `  cost: ${f(c.cpuUsPerMessage, 0)} µs of server CPU per ${per} (${servers}: ${f(c.serverCpuSeconds, 2)} s), ` +
      `${f(c.systemCpuUsPerMessage, 0)} µs with ${c.services.length ? c.services.join(' and ') : 'no service watched'}; RSS of ${servers}${c.servers.length > 1 ? ' together' : ''} ${f(c.serverRssMB, 0)} MB`,
  ];
}

export function runtimeLine(stats: readonly RuntimeStats[] | undefined): string[] {
  if (!stats || stats.length === 0) return [];
  const one = (r: RuntimeStats) =>
    `${r.label} loop delay mean ${f(r.loopMeanMs, 3)} ms, p99 ${bound(r.loopP99Ms)} ms, max ${bound(r.loopMaxMs)} ms (${f(r.loopSamples, 0)} samples); ` +
    `GC ${f(r.gcPauses, 0)} pauses, ${f(r.gcTotalMs, 1)} ms in all, longest ${bound(r.gcMaxMs)} ms`;
  return [`  event loop and GC over the load (/metrics histograms): ${stats.map(one).join(' · ')}`];
}

const n0 = (x: number | null | undefined) =>
  x === null || x === undefined ? '-' : Math.round(x).toLocaleString('en-US');

/** Per api: what it received from Redis against its chats; per process: CPU per delivered message. */
export function scaleLines(s: ScaleStats | undefined): string[] {
  if (!s) return [];
  const api = s.apis.map((a) => {
    const r = a.received;
    const inbound = r
      ? `from Redis ${n0(r.message)} messages (its chats' ${n0(a.expectedMessages)}, the system's ${n0(s.messages)}), ` +
        `${n0(r.updated)} updated${a.expectedUpdated === null ? '' : ` (its chats' ${n0(a.expectedUpdated)})`}, ${n0(r.persisted)} persisted`
      : `its chats' messages ${n0(a.expectedMessages)} of the system's ${n0(s.messages)} (inbound not read: no /metrics)`;
    return `    ${a.label}: members of ${a.chats} of ${s.chats} chats · ${inbound} · ${n0(a.delivered)} delivered${a.framesWritten === null ? '' : ` (${n0(a.framesWritten)} frames written)`}`;
  });
  const cpu = s.processes.map(
    (p) =>
      `${p.label} ${f(p.cpuSeconds, 2)} s: ${f(p.cpuUsPerDelivered, 1)} µs per delivered message (${f(p.cpuUsPerMessage, 0)} per message)`,
  );
  return [
    `  per process (load start until all delivered and stored, ${f(s.windowMs / 1000, 1)} s): ${n0(s.messages)} messages in ${s.chats} chats, ${n0(s.delivered)} delivered (${f(s.fanoutFactor, 1)} per message)`,
    ...api,
    `    CPU: ${cpu.join(' · ')}`,
    ...inboundMismatches(s).map((m) => `    inbound is not its chats' traffic: ${m}`),
  ];
}
