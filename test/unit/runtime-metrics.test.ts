import { createHistogram, PerformanceObserver } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseMetrics, sumOf } from '../../bench/prom.js';
import { cumulativeCounts } from '../../src/metrics/hdr-buckets.js';
import { createRuntimeMetrics, LoopDelayHistogram } from '../../src/metrics/runtime-metrics.js';
import { waitFor } from '../helpers/wait.js';

const MS = 1e6; // ns

/** A seeded generator (mulberry32), so that the random histograms are the same on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('HDR histogram → Prometheus buckets', () => {
  it('counts the samples at or below each bound of a synthetic histogram', () => {
    const h = createHistogram();
    // Below 2048 an HDR histogram of 3 digits is exact: every value is its own bucket.
    for (const [value, times] of [
      [100, 5],
      [1000, 3],
      [1500, 2],
      [2000, 1],
    ] as const)
      for (let i = 0; i < times; i++) h.record(value);
    expect(cumulativeCounts(h, [50, 100, 999, 1000, 1499, 1500, 1999, 2000, 10_000])).toEqual([
      0, 5, 5, 8, 8, 10, 10, 11, 11,
    ]);
    expect(cumulativeCounts(createHistogram(), [1, 10])).toEqual([0, 0]);
  });

  it('agrees with a count of the samples themselves, to HDR precision (3 digits)', () => {
    const next = random(7);
    const h = createHistogram();
    const samples: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Mostly ~10 ms, a long tail up to ~1 s: the shape of event-loop intervals.
      const v = Math.round(10 * MS + next() ** 6 * 1000 * MS);
      samples.push(v);
      h.record(v);
    }
    const bounds = [10.5, 11, 12.5, 15, 20, 35, 60, 110, 260, 510, 1100].map((b) => b * MS);
    const counts = cumulativeCounts(h, bounds);
    bounds.forEach((bound, i) => {
      // A sample within 0.1 % below a bound may be counted above it, never the other way round.
      const exact = samples.filter((v) => v <= bound).length;
      const certain = samples.filter((v) => v <= bound * 0.999).length;
      expect(counts[i]).toBeLessThanOrEqual(exact);
      expect(counts[i]).toBeGreaterThanOrEqual(certain);
    });
    expect(counts.at(-1)).toBe(20_000);
  });

  it('exports the event-loop histogram with the resolution taken off, as cumulative buckets, sum and count', async () => {
    // The monitor records intervals between timer runs: resolution (10 ms) + delay.
    const h = createHistogram();
    const record = (delayMs: number, times: number) => {
      for (let i = 0; i < times; i++) h.record(Math.round((10 + delayMs) * MS));
    };
    record(0.5, 6); // ≤ 1 ms
    record(2, 3); // ≤ 2.5 ms
    record(30, 1); // ≤ 50 ms
    record(2000, 1); // past 1 s: +Inf only
    const registry = new Registry();
    registry.registerMetric(new LoopDelayHistogram(h, 10 * MS) as unknown as Parameters<Registry['registerMetric']>[0]);
    const series = parseMetrics(await registry.metrics());
    const bucket = (le: string) => sumOf(series, 'parley_event_loop_delay_seconds_bucket', `le="${le}"`);
    expect(
      ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'].map(bucket),
    ).toEqual([6, 9, 9, 9, 9, 10, 10, 10, 10, 10, 11]);
    expect(sumOf(series, 'parley_event_loop_delay_seconds_count')).toBe(11);
    // 6 × 0.5 + 3 × 2 + 30 + 2000 ms, to HDR's precision.
    expect(sumOf(series, 'parley_event_loop_delay_seconds_sum')).toBeCloseTo(2.039, 2);
    expect(await registry.metrics()).toContain('# TYPE parley_event_loop_delay_seconds histogram');
  });
});

describe('runtime metrics of a process', () => {
  it('records a stall of the event loop and every GC pause perf_hooks reports', async () => {
    const registry = new Registry();
    const runtime = createRuntimeMetrics(registry);
    // Registered after the metrics' own observer: everything it sees, theirs has seen too.
    const seen: number[] = [];
    const independent = new PerformanceObserver((list) => void seen.push(...list.getEntries().map((e) => e.duration)));
    independent.observe({ entryTypes: ['gc'] });
    try {
      const scrape = async () => parseMetrics(await registry.metrics());
      // The monitor's first run only starts its clock.
      await waitFor(
        async () => sumOf(await scrape(), 'parley_event_loop_delay_seconds_count') >= 2,
        'event-loop samples',
      );
      const blockedUntil = performance.now() + 40;
      while (performance.now() < blockedUntil); // a 40 ms stall: the timer due meanwhile runs 30-40 ms late
      let keep: object[] = [];
      for (let round = 0; round < 40; round++) {
        // Allocation in one synchronous stretch: several scavenges per batch of GC entries,
        // of which prom-client's nodejs_gc_duration_seconds records only the first.
        for (let i = 0; i < 200_000; i++) {
          keep.push({ i });
          if (keep.length > 1000) keep = [];
        }
        await new Promise((r) => setImmediate(r));
      }
      const late = await waitFor(async () => {
        const s = await scrape();
        const slow =
          sumOf(s, 'parley_event_loop_delay_seconds_count') -
          sumOf(s, 'parley_event_loop_delay_seconds_bucket', 'le="0.025"');
        return slow >= 1 ? s : null;
      }, 'the stall in the histogram');
      expect(sumOf(late, 'parley_event_loop_delay_seconds_sum')).toBeGreaterThan(0.025);

      const counted = await waitFor(async () => {
        const s = await scrape();
        return seen.length > 20 && sumOf(s, 'parley_gc_pause_seconds_count') >= seen.length ? s : null;
      }, 'every GC pause counted');
      expect(sumOf(counted, 'parley_gc_pause_seconds_sum')).toBeGreaterThanOrEqual(
        seen.reduce((a, d) => a + d, 0) / 1000 - 1e-9,
      );
      expect(sumOf(counted, 'parley_gc_pause_seconds_count', 'kind="minor"')).toBeGreaterThan(0);
    } finally {
      runtime.stop();
      independent.disconnect();
    }
  });
});
