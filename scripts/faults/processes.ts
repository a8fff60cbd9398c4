import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningProcess {
  proc: ChildProcess;
  /** For the api: its base URL. */
  url: string;
  /** Everything the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends a signal and waits for the exit; resolves with the exit code (null when killed). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((p) => p.kill('SIGKILL')));

/**
 * Starts one of the project's real entry points as a child process (`node --import tsx FILE`)
 * and resolves once it printed the line matching `ready`. `nodeArgs` go to node before the file
 * (e.g. `--cpu-prof`, which NODE_OPTIONS does not accept).
 */
export async function startProcess(
  file: string,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 30_000,
  nodeArgs: readonly string[] = [],
): Promise<RunningProcess> {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', file], {
    cwd: ROOT,
    env: { ...process.env, ...env, NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  const exited = once(proc, 'exit').then(([code]) => (running.delete(proc), code as number | null));
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
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    proc,
    url: match[1] ?? '',
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

export const startApiProcess = (env: Record<string, string>) =>
  startProcess('src/main.ts', env, /parley api listening on (http:\/\/\S+)/);

export const startWorkerProcess = (env: Record<string, string>) =>
  startProcess('workers/main.ts', env, /parley worker ready/);

export const startAllInOne = (env: Record<string, string>) =>
  startProcess('scripts/start.ts', env, /parley api listening on (http:\/\/\S+)/, 60_000);
