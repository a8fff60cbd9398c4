/**
 * `npm run bench -- --scenario small|stress|idle [options]`: Parley's load benchmark (issue 7).
 * An open-loop load generator: sends go out on a fixed timetable whatever the replies, and
 * latency is measured from the time each send was due. Starts its own Parley (a throwaway
 * database and key prefix, the real api and worker entry points) unless --url names one.
 * See BENCHMARKS.md for the method and results, and `npm run bench -- --help` for the options.
 */
import { type BenchOptions, parseCli, USAGE } from './cli.js';
import { formatText, type RunResult, RUNTIME, summarise } from './report.js';
import { runIdle } from './scenarios/idle.js';
import { runSmall } from './scenarios/small.js';
import { runStress } from './scenarios/stress.js';
import { externalTarget, startTarget, type Target, type Throwaway } from './setup.js';

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

async function runOnce(opts: BenchOptions): Promise<{ result: RunResult; throwaway: Throwaway | null }> {
  const target = opts.urls.length
    ? externalTarget(opts)
    : await startTarget({
        apis: opts.scenario === 'idle' ? 1 : opts.apis,
        workers: opts.workers,
        env: { ...(opts.heartbeatMs !== undefined ? { WS_HEARTBEAT_MS: String(opts.heartbeatMs) } : {}), ...opts.env },
        cpuProf: opts.cpuProf,
        runtime: opts.runtime,
      });
  current = target;
  try {
    if (!opts.urls.length) log(`started ${target.processes.map((p) => `${p.label} (pid ${p.pid})`).join(', ')} ${RUNTIME[opts.runtime]}`);
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
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    console.log(USAGE);
    return 0;
  }
  const runs: RunResult[] = [];
  const throwaway: (Throwaway | null)[] = [];
  for (let r = 1; r <= opts.runs; r++) {
    log(`run ${r} of ${opts.runs}: ${opts.scenario}`);
    const run = await runOnce(opts);
    runs.push(run.result);
    throwaway.push(run.throwaway);
  }
  const summary = summarise(opts, runs, throwaway);
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
