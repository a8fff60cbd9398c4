import { describe, expect, it } from 'vitest';
import { compareMedians, compareSmall, compareStress, ratio } from '../../bench/compare.js';
import { costOf } from '../../bench/cost.js';
import type { MeasuredPhase } from '../../bench/measure.js';
import type { ProcStats } from '../../bench/proc-stats.js';
import { parseMetrics } from '../../bench/prom.js';
import { runtimeStats } from '../../bench/runtime-stats.js';
import type { SmallResult } from '../../bench/scenarios/small.js';
import type { StressResult, StressStep } from '../../bench/scenarios/stress.js';

const proc = (label: string, cpuSeconds: number | null, rssMB: number | null = null): ProcStats => ({
  label,
  pid: 1,
  cpuPct: null,
  cpuSeconds,
  rssMB,
  rssMaxMB: rssMB,
});

const pct = (p50: number, p99: number, max = p99) => ({ count: 1, p50, p90: p50, p99, p999: p99, max });

/** The fields the comparison reads; the rest of a phase does not matter to it. */
function phase(
  rate: number,
  ack: [number, number],
  fanout: [number, number, number],
  cost: Partial<MeasuredPhase['cost']>,
): MeasuredPhase {
  return {
    rate,
    ack: pct(...ack),
    fanout: pct(...fanout),
    cost: {
      servers: [],
      serverCpuSeconds: null,
      services: [],
      cpuUsPerMessage: null,
      systemCpuUsPerMessage: null,
      serverRssMB: null,
      ...cost,
    },
  } as unknown as MeasuredPhase;
}

const small = (p: MeasuredPhase) => ({ scenario: 'small', phase: p, problems: [] }) as SmallResult;
const step = (p: MeasuredPhase, held: boolean) => ({ ...p, held, why: [] }) as StressStep;
function stress(steps: StressStep[]): StressResult {
  const heldStep = steps.filter((s) => s.held).at(-1) ?? null;
  return { scenario: 'stress', steps, heldRate: heldStep?.rate ?? null, heldStep, stoppedBecause: [], problems: [] };
}

describe('CPU per message', () => {
  it("adds the servers' CPU seconds over the load and divides by the messages sent", () => {
    const ps = [
      proc('api1', 1.2, 180),
      proc('worker1', 0.3, 130),
      proc('generator', 2, 280),
      proc('redis', 0.5, 12),
      proc('postgres', 0.2),
    ];
    const cost = costOf(ps, ['api1', 'worker1'], 10_000);
    expect(cost.serverCpuSeconds).toBeCloseTo(1.5, 9);
    expect(cost.cpuUsPerMessage).toBe(150); // 1.5 s × 1e6 / 10,000
    expect(cost.services).toEqual(['redis', 'postgres']);
    expect(cost.systemCpuUsPerMessage).toBe(220); // (1.5 + 0.5 + 0.2) s / 10,000; the generator is not the system under test
    expect(cost.serverRssMB).toBe(310); // api and worker together
    // One process (npm start, or a floor relay): its own figures.
    expect(costOf(ps, ['api1'], 4000)).toMatchObject({ cpuUsPerMessage: 300, serverRssMB: 180 });
  });

  it('says nothing rather than something wrong when a server could not be read or nothing was sent', () => {
    expect(costOf([proc('api1', 1), proc('worker1', null)], ['api1', 'worker1'], 1000)).toMatchObject({
      cpuUsPerMessage: null,
      systemCpuUsPerMessage: null,
      serverRssMB: null,
    });
    expect(costOf([proc('relay1', 1, 80)], ['relay1'], 0).cpuUsPerMessage).toBeNull();
    // Without a local Redis or PostgreSQL, the system figure is the servers' alone.
    expect(costOf([proc('relay1', 0.5, 80)], ['relay1'], 1000)).toMatchObject({
      services: [],
      cpuUsPerMessage: 500,
      systemCpuUsPerMessage: 500,
    });
  });
});

describe('ratios Parley / floor', () => {
  it("divides Parley's figure by the floor's, to 2 decimals, and refuses a missing or zero floor", () => {
    expect(ratio(3, 1.5)).toBe(2);
    expect(ratio(1, 3)).toBe(0.33);
    expect(ratio(5, 0)).toBeNull();
    expect(ratio(null, 2)).toBeNull();
    expect(ratio(2, null)).toBeNull();
    expect(ratio(Number.POSITIVE_INFINITY, 2)).toBeNull();
  });

  it('small: compares every figure of the two runs', () => {
    const floor = phase(1000, [0.5, 2], [0.6, 2.5, 8], {
      cpuUsPerMessage: 100,
      systemCpuUsPerMessage: 120,
      serverRssMB: 80,
    });
    const parley = phase(1000, [1.5, 12], [1.5, 13, 33], {
      cpuUsPerMessage: 640,
      systemCpuUsPerMessage: 900,
      serverRssMB: 314,
    });
    const c = compareSmall(small(floor), small(parley));
    expect(c.rate).toBe(1000);
    expect(c.figures).toEqual({
      ackP50Ms: { floor: 0.5, parley: 1.5, ratio: 3 },
      ackP99Ms: { floor: 2, parley: 12, ratio: 6 },
      fanoutP50Ms: { floor: 0.6, parley: 1.5, ratio: 2.5 },
      fanoutP99Ms: { floor: 2.5, parley: 13, ratio: 5.2 },
      fanoutMaxMs: { floor: 8, parley: 33, ratio: 4.13 },
      cpuUsPerMessage: { floor: 100, parley: 640, ratio: 6.4 },
      systemCpuUsPerMessage: { floor: 120, parley: 900, ratio: 7.5 },
      serverRssMB: { floor: 80, parley: 314, ratio: 3.93 },
    });
  });

  it("stress: compares the rates held, and the rest at Parley's highest rate held, against the floor's step at that rate", () => {
    const floorRun = stress([
      step(phase(1000, [0.4, 1], [0.5, 1, 2], { cpuUsPerMessage: 90 }), true),
      step(phase(2000, [0.5, 2], [0.6, 2, 4], { cpuUsPerMessage: 80 }), true),
      step(phase(3000, [0.6, 3], [0.7, 3, 6], { cpuUsPerMessage: 75 }), true),
    ]);
    const parleyRun = stress([
      step(phase(1000, [1, 9], [1, 9, 20], { cpuUsPerMessage: 400 }), true),
      step(phase(2000, [2, 20], [2, 18, 40], { cpuUsPerMessage: 320 }), true),
      step(phase(3000, [9, 80], [9, 90, 150], { cpuUsPerMessage: 300 }), false),
    ]);
    const c = compareStress(floorRun, parleyRun);
    expect(c.rate).toBe(2000);
    expect(c.figures.heldRate).toEqual({ floor: 3000, parley: 2000, ratio: 0.67 });
    expect(c.figures.ackP99Ms).toEqual({ floor: 2, parley: 20, ratio: 10 });
    expect(c.figures.cpuUsPerMessage).toEqual({ floor: 80, parley: 320, ratio: 4 });

    // The medians: Parley's median held rate (2000), the floor's median step at that rate.
    const floorRun2 = stress([
      step(phase(1000, [0.4, 1], [0.5, 1, 2], {}), true),
      step(phase(2000, [0.7, 4], [0.8, 4, 6], { cpuUsPerMessage: 100 }), true),
    ]);
    const parleyMedian = { heldRate: 2000, heldStep: parleyRun.heldStep };
    const m = compareMedians('stress', [floorRun, floorRun2], [parleyRun, parleyRun], parleyMedian);
    expect(m.rate).toBe(2000);
    expect(m.figures.heldRate).toEqual({ floor: 2500, parley: 2000, ratio: 0.8 });
    expect(m.figures.ackP99Ms).toEqual({ floor: 3, parley: 20, ratio: 6.67 }); // floor: median of 2 and 4
    expect(m.figures.cpuUsPerMessage).toEqual({ floor: 90, parley: 320, ratio: 3.56 });
  });

  it('stress: with no rate held by Parley, only the rates held are compared', () => {
    const c = compareStress(
      stress([step(phase(1000, [1, 2], [1, 2, 3], {}), true)]),
      stress([step(phase(1000, [9, 99], [9, 99, 200], {}), false)]),
    );
    expect(c.rate).toBeNull();
    expect(c.figures).toEqual({ heldRate: { floor: 1000, parley: null, ratio: null } });
  });
});

describe('event-loop delay and GC pauses over a window, from two scrapes', () => {
  const exposition = (loop: number[], loopSum: number, gc: Record<string, number[]>, gcSum: number) => {
    const les = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'];
    const gcLes = ['0.0005', '0.001', '0.005', '+Inf'];
    return parseMetrics(
      [
        ...les.map((le, i) => `parley_event_loop_delay_seconds_bucket{le="${le}"} ${loop[i]}`),
        `parley_event_loop_delay_seconds_sum ${loopSum}`,
        `parley_event_loop_delay_seconds_count ${loop.at(-1)}`,
        ...Object.entries(gc).flatMap(([kind, counts]) => [
          ...gcLes.map((le, i) => `parley_gc_pause_seconds_bucket{le="${le}",kind="${kind}"} ${counts[i]}`),
          `parley_gc_pause_seconds_count{kind="${kind}"} ${counts.at(-1)}`,
        ]),
        `parley_gc_pause_seconds_sum{kind="minor"} ${gcSum}`,
      ].join('\n'),
    );
  };

  it('takes the difference of the cumulative buckets: p99 and max as the bounds they lie under, GC total from the sums', () => {
    const before = exposition(
      [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
      0.01,
      { minor: [10, 10, 10, 10] },
      0.004,
    );
    // 1000 samples more: 980 under 1 ms, 15 under 2.5 ms, 4 under 5 ms, 1 under 50 ms.
    const after = exposition(
      [1080, 1095, 1099, 1099, 1099, 1100, 1100, 1100, 1100, 1100, 1100],
      0.25,
      { minor: [40, 48, 50, 50], major: [0, 0, 1, 1] },
      0.0285,
    );
    const r = runtimeStats('api1', before, after);
    expect(r).toEqual({
      label: 'api1',
      loopSamples: 1000,
      loopMeanMs: 0.24,
      loopP99Ms: 2.5, // the 990th sample is past the 980 under 1 ms
      loopMaxMs: 50,
      gcPauses: 41,
      gcTotalMs: 24.5,
      gcMaxMs: 5,
    });
  });

  it('reports a sample past the last bound as Infinity, and nothing for an empty window', () => {
    const same = exposition([5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], 0.001, {}, 0);
    expect(runtimeStats('worker1', same, same)).toMatchObject({
      loopSamples: 0,
      loopMeanMs: null,
      loopP99Ms: null,
      loopMaxMs: null,
      gcPauses: 0,
      gcMaxMs: null,
    });
    const stalled = exposition([5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6], 2.001, {}, 0);
    expect(runtimeStats('worker1', same, stalled)).toMatchObject({
      loopSamples: 1,
      loopP99Ms: Number.POSITIVE_INFINITY,
      loopMaxMs: Number.POSITIVE_INFINITY,
    });
  });
});
