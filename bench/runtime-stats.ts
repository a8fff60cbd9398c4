import { scrape, type Series } from './prom.js';
import type { MetricsSource } from './setup.js';

/**
 * A server process's event loop and GC over a window, from two scrapes of its /metrics
 * (`parley_event_loop_delay_seconds`, `parley_gc_pause_seconds`): the difference of two
 * cumulative histograms. Percentiles and maxima are bucket bounds: the value lies at or below it,
 * above the bound before it. Infinity: past the last finite bound (JSON prints null).
 */
export interface RuntimeStats {
  label: string;
  /** Event-loop delay samples in the window (one per monitor resolution: 10 ms). */
  loopSamples: number;
  loopMeanMs: number | null;
  loopP99Ms: number | null;
  loopMaxMs: number | null;
  /** GC pauses in the window, every kind. */
  gcPauses: number;
  gcTotalMs: number;
  gcMaxMs: number | null;
}

/** Cumulative counts of a histogram by upper bound (summed over its other labels), ascending; +Inf last. */
export function bucketsOf(series: readonly Series[], name: string): [number, number][] {
  const byBound = new Map<number, number>();
  for (const s of series) {
    if (s.name !== `${name}_bucket`) continue;
    const le = /(?:^|,)le="([^"]+)"/.exec(s.labels)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    byBound.set(bound, (byBound.get(bound) ?? 0) + s.value);
  }
  return [...byBound].sort((a, b) => a[0] - b[0]);
}

/** after − before, bound by bound (a bound missing before counts from 0). */
export function bucketDelta(
  before: readonly [number, number][],
  after: readonly [number, number][],
): [number, number][] {
  const was = new Map(before);
  return after.map(([bound, n]) => [bound, n - (was.get(bound) ?? 0)]);
}

/** The bound of the bucket holding the sample of rank ceil(q × count) (q in (0, 1]); null without samples. */
export function quantileBound(cumulative: readonly [number, number][], q: number): number | null {
  const total = cumulative.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  return cumulative.find(([, n]) => n >= rank)?.[0] ?? null;
}

const sumOf = (series: readonly Series[], name: string) =>
  series.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
const ms = (seconds: number | null) =>
  seconds === null ? null : Number.isFinite(seconds) ? Math.round(seconds * 1e6) / 1e3 : seconds;

export function runtimeStats(label: string, before: readonly Series[], after: readonly Series[]): RuntimeStats {
  const loop = bucketDelta(
    bucketsOf(before, 'parley_event_loop_delay_seconds'),
    bucketsOf(after, 'parley_event_loop_delay_seconds'),
  );
  const gc = bucketDelta(bucketsOf(before, 'parley_gc_pause_seconds'), bucketsOf(after, 'parley_gc_pause_seconds'));
  const delta = (name: string) => sumOf(after, name) - sumOf(before, name);
  const loopSamples = loop.at(-1)?.[1] ?? 0;
  return {
    label,
    loopSamples,
    loopMeanMs: loopSamples > 0 ? ms(delta('parley_event_loop_delay_seconds_sum') / loopSamples) : null,
    loopP99Ms: ms(quantileBound(loop, 0.99)),
    loopMaxMs: ms(quantileBound(loop, 1)),
    gcPauses: gc.at(-1)?.[1] ?? 0,
    gcTotalMs: Math.round(delta('parley_gc_pause_seconds_sum') * 1e4) / 10,
    gcMaxMs: ms(quantileBound(gc, 1)),
  };
}

/** One scrape per source (null where it failed: a process without the histograms is left out). */
export function scrapeRuntime(sources: readonly MetricsSource[]): Promise<(Series[] | null)[]> {
  return Promise.all(sources.map((s) => scrape(s.url).catch(() => null)));
}

/** The stats of every source both scrapes reached. */
export function runtimeOver(
  sources: readonly MetricsSource[],
  before: readonly (Series[] | null)[],
  after: readonly (Series[] | null)[],
): RuntimeStats[] {
  const out: RuntimeStats[] = [];
  sources.forEach((s, i) => {
    const b = before[i];
    const a = after[i];
    if (b && a && a.some((x) => x.name === 'parley_event_loop_delay_seconds_count'))
      out.push(runtimeStats(s.label, b, a));
  });
  return out;
}
