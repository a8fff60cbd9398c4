import type { BenchOptions } from '../cli.js';
import { type LoadWorld, runPhase } from '../load.js';
import { lossProblems } from '../measure.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Unreported load before the measurement: a cold process compiles its hot path, fills the
 * membership caches and seeds every chat's seq counter during its first seconds, which would
 * otherwise show up as the first step's p99. Returns what was lost or duplicated (still a failure).
 */
export async function warmUp(world: LoadWorld, opts: BenchOptions, log: (line: string) => void): Promise<string[]> {
  if (opts.warmupS <= 0) return [];
  log(`warm-up: ${opts.rate} msg/s for ${opts.warmupS} s`);
  const warm = await runPhase(world, {
    rate: opts.rate,
    durationS: opts.warmupS,
    bodyChars: opts.bodyChars,
    drainTimeoutMs: opts.drainTimeoutMs,
    changes: opts.changes,
  });
  await sleep(1000); // persistence catches up: the measurement starts from rest
  return lossProblems(warm).map((p) => `warm-up: ${p}`);
}
