/**
 * `npm run bench -- --scenario small|stress|idle [options]`: Parley's load benchmark.
 * An open-loop load generator: sends go out on a fixed timetable whatever the replies, and
 * latency is measured from the time each send was due. Starts its own Parley (a throwaway
 * database and key prefix, the real api and worker entry points) unless --url names one, and by
 * default the floor before it in each run (bench/floor/, a bare relay), for the ratios
 * Parley / floor. See BENCHMARKS.md for the method and results, and `npm run bench -- --help`
 * for the options.
 */
import { errorText } from '../src/domain/errors.js';
import { type BenchOptions, parseCli, USAGE } from './cli.js';
import { startFloorTarget } from './floor-target.js';
import { formatText, type RunResult, RUNTIME, summarise } from './report.js';
import { runIdle } from './scenarios/idle.js';
import { runSmall } from './scenarios/small.js';
import { runStress } from './scenarios/stress.js';
import { externalTarget, PROFILE_DIR, startTarget, type Target, type Throwaway } from './setup.js';

const log = (line: string) => console.error(`bench: ${line}`);

let current: Target | undefined;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping and cleaning up`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

/** Starts the target fresh, runs the scenario on it, and stops it (removing what it made). */
async function runOnce(
  opts: BenchOptions,
  kind: 'parley' | 'floor',
): Promise<{ result: RunResult; throwaway: Throwaway | null }> {
  const target =
    kind === 'floor'
      ? await startFloorTarget({
          relays: opts.apis,
          cpuProf: opts.cpuProf,
          profileDir: PROFILE_DIR,
          runtime: opts.runtime,
        })
      : opts.urls.length
        ? externalTarget(opts)
        : await startTarget({
            apis: opts.scenario === 'idle' ? 1 : opts.apis,
            workers: opts.workers,
            env: {
              ...(opts.heartbeatMs !== undefined ? { WS_HEARTBEAT_MS: String(opts.heartbeatMs) } : {}),
              ...opts.env,
            },
            cpuProf: opts.cpuProf,
            runtime: opts.runtime,
            allInOne: opts.allInOne,
            redisCluster: opts.redisCluster,
          });
  current = target;
  try {
    const how = kind === 'floor' && opts.runtime === 'compiled' ? 'compiled (.bench/floor/)' : RUNTIME[opts.runtime];
    if (kind === 'floor' || !opts.urls.length)
      log(
        `started ${target.processes.map((p) => `${p.label} (pid ${p.pid})`).join(', ')} ${how}` +
          (target.throwaway?.redisCluster
            ? ` on a private Redis Cluster (${target.throwaway.redisCluster.join(',')})`
            : ''),
      );
    const result =
      opts.scenario === 'idle'
        ? await runIdle(opts, target, log)
        : opts.scenario === 'stress'
          ? await runStress(opts, target, log)
          : await runSmall(opts, target, log);
    return { result, throwaway: target.throwaway };
  } finally {
    if (!interrupted) await target.stop();
    current = undefined;
  }
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    console.error(`${errorText(err)}\n\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    console.log(USAGE);
    return 0;
  }
  const kinds = opts.target === 'both' ? (['floor', 'parley'] as const) : ([opts.target] as const);
  const measured = {
    floor: { runs: [] as RunResult[], throwaway: [] as (Throwaway | null)[] },
    parley: { runs: [] as RunResult[], throwaway: [] as (Throwaway | null)[] },
  };
  for (let r = 1; r <= opts.runs; r++) {
    // The floor first, then Parley, each started fresh: the pair shares the machine's state of the moment.
    for (const kind of kinds) {
      log(`run ${r} of ${opts.runs}: ${opts.scenario}, ${kind}`);
      const run = await runOnce(opts, kind);
      measured[kind].runs.push(run.result);
      measured[kind].throwaway.push(run.throwaway);
    }
  }
  const summary = summarise(opts, measured.parley, opts.target === 'parley' ? null : measured.floor);
  console.log(opts.json ? JSON.stringify(summary, null, 2) : formatText(summary));
  return summary.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
