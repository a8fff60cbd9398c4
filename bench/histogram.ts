import { build, type Histogram } from 'hdr-histogram-js';

/** Latency percentiles in milliseconds (recorded in microseconds, 3 significant digits). */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** A histogram of latencies in microseconds, from 1 µs up to (auto-resized past) two minutes. */
export function createLatencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

const ms = (us: number) => Math.round(us) / 1000;

export function percentilesOf(h: Histogram): Percentiles {
  // A percentile is the top of its bucket, which can lie a hair above the exact maximum.
  const at = (p: number) => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: ms(h.maxValue) };
}

/** Nearest-rank percentile of a small sample (polled gauges); null when there is none. */
export function samplePercentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The median of the numbers that are there (runs where a figure is missing are skipped). */
export function median(xs: readonly (number | null | undefined)[]): number | null {
  const present = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (present.length === 0) return null;
  const sorted = [...present].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

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
    for (const key of Object.keys(first))
      out[key] = deepMedian(xs.map((x) => (x as Record<string, unknown> | null)?.[key]));
    return out;
  }
  return first;
}
