import type { BenchOptions } from '../cli.js';
import { lossProblems, type MeasuredPhase, measuredPhase } from '../measure.js';
import type { Target } from '../setup.js';
import { openWorld } from '../world.js';
import { warmUp } from './warm-up.js';

export interface StressStep extends MeasuredPhase {
  held: boolean;
  /** Why the step did not hold (empty when it did). */
  why: string[];
}

export interface StressResult {
  scenario: 'stress';
  steps: StressStep[];
  /** The highest rate whose step held (null: not even the first). */
  heldRate: number | null;
  heldStep: StressStep | null;
  /** Why the last step failed (empty when the bench reached --max-rate). */
  stoppedBecause: string[];
  /** Loss or duplicates in any step: the run fails. */
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `stress`: steps the rate up (--rate, + --step, ... up to --max-rate), --duration seconds each,
 * until fan-out p99 passes --p99-limit, anything is lost, persistence does not drain within
 * --drain-limit of the step's load stopping, or the generator cannot keep its timetable.
 */
export async function runStress(
  opts: BenchOptions,
  target: Target,
  log: (line: string) => void,
): Promise<StressResult> {
  const world = await openWorld(target.apiUrls, opts, log);
  const steps: StressStep[] = [];
  const problems: string[] = [];
  try {
    problems.push(...(await warmUp(world, opts, log)));
    for (let rate = opts.rate; rate <= opts.maxRate; rate += opts.stepRate) {
      log(`step: ${rate} msg/s for ${opts.durationS} s`);
      const phase = await measuredPhase(
        target,
        world,
        {
          rate,
          durationS: opts.durationS,
          bodyChars: opts.bodyChars,
          drainTimeoutMs: opts.drainTimeoutMs,
          changes: opts.changes,
        },
        opts.scrapeMs,
      );
      const loss = lossProblems(phase);
      problems.push(...loss.map((p) => `at ${rate} msg/s: ${p}`));
      const why = [...loss];
      if (phase.fanout.p99 > opts.p99LimitMs) why.push(`fan-out p99 ${phase.fanout.p99} ms > ${opts.p99LimitMs} ms`);
      const { drainMs } = phase.persistence;
      if (phase.persistence.drainBy !== null && (drainMs === null || drainMs > opts.drainLimitMs)) {
        why.push(
          `persistence drained ${drainMs === null ? 'not within 30 s' : `in ${drainMs} ms`} > ${opts.drainLimitMs} ms`,
        );
      }
      if (phase.sendRate < rate * 0.95) why.push(`the generator kept only ${phase.sendRate} msg/s`);
      steps.push({ ...phase, held: why.length === 0, why });
      log(
        `  fan-out p99 ${phase.fanout.p99} ms, drain ${drainMs ?? '-'} ms${why.length ? `: stops (${why.join('; ')})` : ''}`,
      );
      if (why.length > 0) break;
      await sleep(1000);
    }
  } finally {
    world.clients.close();
  }
  const heldStep = steps.filter((s) => s.held).at(-1) ?? null;
  const last = steps.at(-1);
  return {
    scenario: 'stress',
    steps,
    heldRate: heldStep?.rate ?? null,
    heldStep,
    stoppedBecause: last && !last.held ? last.why : [],
    problems,
  };
}
