/**
 * What Node's HDR histograms (perf_hooks: monitorEventLoopDelay, createHistogram) hold, read as
 * Prometheus buckets. Node offers no "how many samples are at or below v"; it offers
 * `percentile(p)`, the value of the sample of rank round(p% of count). Ranks are monotone in
 * their values, so a binary search over ranks finds each bucket's count exactly, to HDR's own
 * precision (3 significant digits: a sample within 0.1 % of a bound may land on either side).
 */

/** The part of perf_hooks' Histogram this reads (IntervalHistogram and RecordableHistogram both have it). */
export interface HdrHistogram {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  percentile(percentile: number): number;
}

/**
 * For each bound (ascending, in the histogram's unit), the number of samples at or below it:
 * cumulative, as Prometheus's `le` buckets are. Each bound costs at most log2(count) calls of
 * `percentile` (a few µs each), one when no sample lies between it and the previous bound, and
 * none when it lies outside [min, max]; the search for a bound starts where the previous one ended.
 */
export function cumulativeCounts(h: HdrHistogram, bounds: readonly number[]): number[] {
  const n = h.count;
  const out: number[] = [];
  /** The largest rank known to be at or below the previous bound (0: none). */
  let below = 0;
  for (const bound of bounds) {
    if (n === 0 || h.min > bound) {
      out.push(below);
      continue;
    }
    if (h.max <= bound) {
      below = n;
      out.push(n);
      continue;
    }
    const rank = (k: number) => h.percentile((k / n) * 100);
    // Often no sample lies between two bounds: one call settles it.
    if (below > 0 && rank(below + 1) > bound) {
      out.push(below);
      continue;
    }
    // Invariant: rank `below` is at or below the bound (or is 0), rank `above` is past it (max is).
    let above = n;
    while (above - below > 1) {
      const mid = Math.floor((below + above) / 2);
      if (rank(mid) <= bound) below = mid;
      else above = mid;
    }
    out.push(below);
  }
  return out;
}
