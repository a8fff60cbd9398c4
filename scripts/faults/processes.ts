import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningProcess {
  proc: ChildProcess;
  /** For the api: its base URL. */
  url: string;
  /** Everything the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends a signal and waits for the exit; resolves with the exit code (null when killed). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** For `npm run`: true while any process of its group is alive (after npm's exit: left behind). */
  leftovers(): boolean;
}

/** Every child still running, and how to kill it for good (its process group, for npm's). */
const running = new Map<ChildProcess, () => void>();
process.on('exit', () => running.forEach((killHard) => killHard()));

/**
 * Starts one of the project's real entry points as a child process and resolves once it printed
 * the line matching `ready`: a TypeScript source through tsx (`node --import tsx src/main.ts`), a
 * compiled one as production runs it (`node dist/src/main.js`, see `buildIfStale`). `nodeArgs` go
 * to node before the file (e.g. `--cpu-prof`, which NODE_OPTIONS does not accept).
 */
export function startProcess(
  file: string,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 30_000,
  nodeArgs: readonly string[] = [],
): Promise<RunningProcess> {
  const loader = file.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return spawnUntilReady(process.execPath, [...nodeArgs, ...loader, file], env, ready, timeoutMs, false);
}

/**
 * Brings dist/ up to date as `npm start` does before it runs (`npm run build` when a source is
 * newer than the last build; one build at a time across processes). Rejects with tsc's output.
 */
export async function buildIfStale(): Promise<void> {
  await promisify(execFile)(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: ROOT }).catch(
    (err: { code?: number; stdout?: string; stderr?: string }) => {
      throw new Error(`npm run build failed (exit ${err.code}):\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    },
  );
}

/**
 * `npm run SCRIPT` as an operator or a supervisor runs it: npm, the shell npm runs the script in,
 * and the process. `kill` signals npm alone, as a supervisor would (npm passes the signal on to
 * its child); SIGKILL, which npm cannot pass on, goes to the whole process group, so that nothing
 * the script started outlives the test.
 */
export function startNpmScript(
  script: string,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<RunningProcess> {
  return spawnUntilReady(
    'npm',
    ['run', script],
    { npm_config_update_notifier: 'false', ...env },
    ready,
    timeoutMs,
    true,
  );
}

/**
 * True when a live process (not a zombie: a dead child nobody reaped, such as tsx's esbuild
 * service once node is gone) is in process group `pgid` (Linux /proc).
 */
function liveInGroup(pgid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}

/** The environment a child started here sees: this process's, then the caller's, in test mode. */
export function childEnv(env: Record<string, string>): Record<string, string | undefined> {
  return { ...process.env, ...env, NODE_ENV: 'test' };
}

async function spawnUntilReady(
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs: number,
  ownGroup: boolean,
): Promise<RunningProcess> {
  const file = args.at(-1) ?? command;
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  const killHard = () => {
    try {
      if (ownGroup && proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
      else proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  running.set(proc, killHard);
  const { stdout, stderr } = proc;
  if (!stdout || !stderr) throw new Error(`${file}: spawned without its output pipes`);
  let out = '';
  // npm's process group stays on the list after npm exits: what it left behind dies with the test.
  const exited = once(proc, 'exit').then(([code]) => (ownGroup || running.delete(proc), code as number | null));
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    stdout.on('data', onData);
    stderr.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    proc,
    url: match[1] ?? '',
    output: () => out,
    leftovers: () => ownGroup && proc.pid !== undefined && liveInGroup(proc.pid),
    async kill(signal = 'SIGTERM') {
      // SIGKILL reaches npm's whole group, even after npm itself is gone.
      if (signal === 'SIGKILL') killHard();
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      if (signal !== 'SIGKILL') proc.kill(signal);
      return exited;
    },
  };
}

export const startApiProcess = (env: Record<string, string>) =>
  startProcess('src/main.ts', env, /parley api listening on (http:\/\/\S+)/);

export const startWorkerProcess = (env: Record<string, string>) =>
  startProcess('workers/main.ts', env, /parley worker ready/);

/** The real `npm start` (through npm and its shell, as the README runs it). */
export const startAllInOne = (env: Record<string, string>) =>
  startNpmScript('start', env, /parley api listening on (http:\/\/\S+)/);
