import {
  constants,
  type IntervalHistogram,
  monitorEventLoopDelay,
  type NodeGCPerformanceDetail,
  type PerformanceEntry,
  PerformanceObserver,
} from 'node:perf_hooks';
import { Histogram, type Metric, type Registry } from 'prom-client';
import { cumulativeCounts, type HdrHistogram } from './hdr-buckets.js';

/** Event-loop delay buckets, in seconds: 1 ms (a loop that keeps up) to 1 s (a stall). */
export const LOOP_DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** GC pause buckets, in seconds: scavenges take a fraction of a millisecond, mark-compacts more. */
export const GC_PAUSE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** perf_hooks' GC kinds under the names prom-client's `nodejs_gc_duration_seconds` uses. */
const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface RuntimeMetricsOptions {
  /** How often the event-loop monitor's timer is due, in ms (each sample is how late it fired). */
  resolutionMs?: number;
}

/** One series of the text exposition, as prom-client's registry formats it. */
interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * `parley_event_loop_delay_seconds`: a Prometheus histogram read, at each scrape, from Node's
 * own event-loop monitor (an HDR histogram filled by a libuv timer, no JavaScript per sample).
 * Nothing is reset, so every scraper sees the same cumulative counts. The monitor records the
 * interval between two runs of its timer, which is the resolution plus the delay: the
 * resolution is taken off (prom-client's `nodejs_eventloop_lag_*` gauges do not, so an idle loop
 * shows ~10 ms there).
 */
export class LoopDelayHistogram {
  readonly name = 'parley_event_loop_delay_seconds';
  readonly help = 'How late the event loop ran a timer that was due, sampled every resolution (cumulative since start)';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** The _sum exported last: never lowered (see get). */
  private sum = 0;
  private readonly boundsNs: number[];

  constructor(
    private readonly source: HdrHistogram & { reset(): void },
    private readonly resolutionNs: number,
  ) {
    this.boundsNs = LOOP_DELAY_BUCKETS.map((b) => b * 1e9 + resolutionNs);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const h = this.source;
    const n = h.count;
    const counts = cumulativeCounts(h, this.boundsNs);
    const bucket = `${this.name}_bucket`;
    // A timer can run a little before its interval is up (the loop's clock has ms granularity),
    // so the mean minus the resolution could dip; a histogram's sum only grows.
    if (n > 0) this.sum = Math.max(this.sum, (n * (h.mean - this.resolutionNs)) / 1e9);
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [
        ...LOOP_DELAY_BUCKETS.map((le, i) => ({ labels: { le }, value: counts[i] ?? 0, metricName: bucket })),
        { labels: { le: '+Inf' }, value: n, metricName: bucket },
        { labels: {}, value: this.sum, metricName: `${this.name}_sum` },
        { labels: {}, value: n, metricName: `${this.name}_count` },
      ],
    };
  }

  /** Registry.resetMetrics() (tests). */
  reset(): void {
    this.source.reset();
    this.sum = 0;
  }
}

/**
 * The process's event-loop delay and GC pauses as Prometheus histograms in `registry`:
 * `parley_event_loop_delay_seconds` (above) and `parley_gc_pause_seconds{kind}`, every GC pause
 * perf_hooks reports. prom-client's default `nodejs_gc_duration_seconds` is meant to be the same,
 * but it records only the first entry of each batch its observer receives: GCs that follow each
 * other within one turn of the loop count as one (40 of 117 pauses, 10 of 25 ms, in a test that
 * allocates in synchronous bursts; the same count in the api under the bench's steady load), and
 * its buckets start at 1 ms, above most scavenges. `stop()` ends the monitor and the observer.
 */
export function createRuntimeMetrics(registry: Registry, opts: RuntimeMetricsOptions = {}) {
  const resolutionMs = opts.resolutionMs ?? 10;
  const monitor: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  monitor.enable();
  // prom-client's registry serialises any metric object with name/help/type/get(); its types
  // list only its own classes, none of which can be fed a histogram's counts at once.
  registry.registerMetric(new LoopDelayHistogram(monitor, resolutionMs * 1e6) as unknown as Metric);

  const gcPauses = new Histogram({
    name: 'parley_gc_pause_seconds',
    help: 'Garbage-collection pauses by kind (minor, major, incremental, weakcb), every one perf_hooks reports',
    labelNames: ['kind'],
    buckets: GC_PAUSE_BUCKETS,
    registers: [registry],
  });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // A gc entry carries its kind in `detail` (Node >= 16), which the entry's type does not declare.
      const detail = (entry as PerformanceEntry & { detail?: NodeGCPerformanceDetail }).detail;
      const kind = GC_KINDS[detail?.kind ?? -1] ?? 'unknown';
      gcPauses.observe({ kind }, entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  return {
    stop(): void {
      monitor.disable();
      observer.disconnect();
    },
  };
}

export type RuntimeMetrics = ReturnType<typeof createRuntimeMetrics>;
