import { deepMedian } from './histogram.js';
import type { MeasuredPhase } from './measure.js';
import type { SmallResult } from './scenarios/small.js';
import type { StressResult } from './scenarios/stress.js';

/**
 * Parley against the floor in the same run: each figure for both, and Parley / floor. A ratio of
 * 3 is three times the floor's latency, CPU or memory (for the highest rate held, a ratio under 1
 * means Parley held less).
 */

/** The figures compared, with how the report names them. */
export const FIGURES = {
  heldRate: 'highest rate held (msg/s)',
  ackP50Ms: 'ack p50 (ms)',
  ackP99Ms: 'ack p99 (ms)',
  fanoutP50Ms: 'fan-out p50 (ms)',
  fanoutP99Ms: 'fan-out p99 (ms)',
  fanoutMaxMs: 'fan-out max (ms)',
  cpuUsPerMessage: 'CPU per message, servers (µs)',
  systemCpuUsPerMessage: 'CPU per message, + redis, postgres (µs)',
  serverRssMB: 'RSS of the servers together (MB)',
} as const;

export type Figure = keyof typeof FIGURES;
export type Figures = Partial<Record<Figure, number | null>>;

export interface Pair {
  floor: number | null;
  parley: number | null;
  /** parley / floor, to 2 decimals; null when either is missing or the floor's is 0. */
  ratio: number | null;
}

export interface Comparison {
  /** The load both were measured at (stress: the floor's step at Parley's highest rate held); null when there was none. */
  rate: number | null;
  figures: Partial<Record<Figure, Pair>>;
}

export function ratio(parley: number | null | undefined, floor: number | null | undefined): number | null {
  if (parley === null || parley === undefined || floor === null || floor === undefined || !(floor > 0)) return null;
  if (!Number.isFinite(parley) || !Number.isFinite(floor)) return null;
  return Math.round((parley / floor) * 100) / 100;
}

export function figuresOf(p: MeasuredPhase | null | undefined): Figures {
  if (!p) return {};
  return {
    ackP50Ms: p.ack.p50,
    ackP99Ms: p.ack.p99,
    fanoutP50Ms: p.fanout.p50,
    fanoutP99Ms: p.fanout.p99,
    fanoutMaxMs: p.fanout.max,
    cpuUsPerMessage: p.cost.cpuUsPerMessage,
    systemCpuUsPerMessage: p.cost.systemCpuUsPerMessage,
    serverRssMB: p.cost.serverRssMB,
  };
}

/** Every figure either side has, in FIGURES' order. */
export function compareFigures(rate: number | null, floor: Figures, parley: Figures): Comparison {
  const figures: Partial<Record<Figure, Pair>> = {};
  for (const key of Object.keys(FIGURES) as Figure[]) {
    if (!(key in floor) && !(key in parley)) continue;
    const f = floor[key] ?? null;
    const p = parley[key] ?? null;
    figures[key] = { floor: f, parley: p, ratio: ratio(p, f) };
  }
  return { rate, figures };
}

export function compareSmall(floor: SmallResult, parley: SmallResult): Comparison {
  return compareFigures(parley.phase.rate, figuresOf(floor.phase), figuresOf(parley.phase));
}

/**
 * Stress: the highest rates held, and the other figures at Parley's highest rate held, where
 * the floor ran the same step (latency at different rates says nothing).
 */
export function compareStress(floor: StressResult, parley: StressResult): Comparison {
  const rate = parley.heldRate;
  const floorStep = rate === null ? undefined : floor.steps.find((s) => s.rate === rate);
  return compareFigures(
    floorStep ? rate : null,
    { heldRate: floor.heldRate, ...figuresOf(floorStep) },
    { heldRate: parley.heldRate, ...(floorStep ? figuresOf(parley.heldStep) : {}) },
  );
}

/**
 * The comparison of the medians: of the figures (small), or of the held rates and of the steps
 * at Parley's median held rate (stress; the floor's from the runs that ran that step).
 */
export function compareMedians(
  scenario: 'small' | 'stress',
  floorRuns: readonly unknown[],
  parleyRuns: readonly unknown[],
  parleyMedian: unknown,
): Comparison {
  if (scenario === 'small') {
    const f = deepMedian((floorRuns as SmallResult[]).map((r) => r.phase)) as MeasuredPhase | null;
    const p = (parleyMedian as { phase: MeasuredPhase | null }).phase;
    return compareFigures(p?.rate ?? null, figuresOf(f), figuresOf(p));
  }
  const m = parleyMedian as { heldRate: number | null; heldStep: MeasuredPhase | null };
  const floors = floorRuns as StressResult[];
  const floorHeld = deepMedian(floors.map((r) => r.heldRate)) as number | null;
  const atRate = m.heldRate === null ? [] : floors.flatMap((r) => r.steps.filter((s) => s.rate === m.heldRate));
  const floorStep = atRate.length ? (deepMedian(atRate) as MeasuredPhase) : null;
  return compareFigures(
    floorStep ? m.heldRate : null,
    { heldRate: floorHeld, ...figuresOf(floorStep) },
    { heldRate: m.heldRate, ...(floorStep ? figuresOf(m.heldStep) : {}) },
  );
}
