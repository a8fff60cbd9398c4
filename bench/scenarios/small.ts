import type { BenchOptions } from '../cli.js';
import { lossProblems, type MeasuredPhase, measuredPhase } from '../measure.js';
import type { Target } from '../setup.js';
import { openWorld } from '../world.js';
import { warmUp } from './warm-up.js';

export interface SmallResult {
  scenario: 'small';
  phase: MeasuredPhase;
  /** Loss, duplicates or refusals (in the warm-up too): any makes the run fail. */
  problems: string[];
}

/** `small`: a fixed rate (default 1,000 msg/s) for a fixed time, after an unreported warm-up. */
export async function runSmall(opts: BenchOptions, target: Target, log: (line: string) => void): Promise<SmallResult> {
  const world = await openWorld(target.apiUrls, opts, log);
  try {
    const problems = await warmUp(world, opts, log);
    const mix = opts.changes > 0 ? ` (${Math.round(opts.changes * 100)} % edits and reactions)` : '';
    log(`load: ${opts.rate} msg/s for ${opts.durationS} s${mix}`);
    const spec = {
      rate: opts.rate,
      durationS: opts.durationS,
      bodyChars: opts.bodyChars,
      drainTimeoutMs: opts.drainTimeoutMs,
      changes: opts.changes,
    };
    const phase = await measuredPhase(target, world, spec, opts.scrapeMs);
    problems.push(...lossProblems(phase));
    return { scenario: 'small', phase, problems };
  } finally {
    world.clients.close();
  }
}
