import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/**
 * A server process `npm start` runs itself (PostgreSQL, redis-server, initdb on a first start).
 *
 * Each gets a process group of its own, so that a Ctrl-C in the terminal (which signals the whole
 * foreground group) reaches node alone: node stops the api and the workers first, then stops
 * these, never the other way round. The price is that a node killed outright (SIGKILL) leaves
 * them running; the next `npm start` on the same folder stops them (stopLeftover, data-dir.ts).
 * Whenever node exits by itself, however it exits, the children still running get their stop
 * signal.
 */
export interface ChildSpec {
  /** For messages: `PostgreSQL`, `redis-server`, `initdb`. */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Run as this user (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
  /** The file its stdout and stderr are appended to (read back for error messages). */
  logFile: string;
  /** Asks it to stop cleanly (PostgreSQL: SIGINT, a fast shutdown; redis-server: SIGTERM). */
  stopSignal: NodeJS.Signals;
  /** Ends it when it did not stop in time (PostgreSQL: SIGQUIT, an immediate shutdown). */
  forceSignal: NodeJS.Signals;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Settles when the process exited, with its code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** The end of its log, for an error message. */
  logTail(lines?: number): string;
  /**
   * Sends the stop signal and waits up to `capMs` for the exit; then the force signal, and
   * `forced` (after a short wait for that exit too).
   */
  stop(capMs: number): Promise<'stopped' | 'forced'>;
}

/** The children still running, with the signal that stops each. */
const live = new Map<Child, NodeJS.Signals>();
process.on('exit', () => {
  for (const [child, signal] of live) {
    try {
      // The exit cannot wait: the signal is sent, the child finishes its stop on its own.
      process.kill(child.pid, signal);
    } catch {
      // gone meanwhile
    }
  }
});

/** Starts the process; rejects when it cannot be started at all (no such file, no permission). */
export async function spawnChild(spec: ChildSpec): Promise<Child> {
  const log = openSync(spec.logFile, 'a', 0o600);
  let proc: ChildProcess;
  try {
    proc = spawn(spec.command, spec.args, {
      env: spec.env,
      stdio: ['ignore', log, log],
      detached: true,
      ...(spec.uid !== undefined ? { uid: spec.uid, gid: spec.gid } : {}),
    });
  } finally {
    closeSync(log);
  }
  await new Promise<void>((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`could not start ${spec.name} (${spec.command}): ${err.code ?? err.message}`)),
    );
  });
  const { pid } = proc;
  if (pid === undefined) throw new Error(`${spec.name} (${spec.command}) started without a pid`);
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      done = true;
      live.delete(child);
      resolve(code);
    }),
  );
  const waitExit = (ms: number) =>
    Promise.race([
      exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), ms).unref()),
    ]);
  const child: Child = {
    name: spec.name,
    pid,
    exited,
    running: () => !done,
    logTail: (lines = 15) => tail(spec.logFile, lines),
    async stop(capMs) {
      if (done) return 'stopped';
      proc.kill(spec.stopSignal);
      if (await waitExit(capMs)) return 'stopped';
      proc.kill(spec.forceSignal);
      if (!(await waitExit(1000))) proc.kill('SIGKILL');
      return 'forced';
    },
  };
  live.set(child, spec.stopSignal);
  return child;
}

/** Runs a process to its end (initdb); rejects with the end of its log unless it exits 0. */
export async function runToEnd(spec: ChildSpec, started: (child: Child) => void = () => undefined): Promise<void> {
  const child = await spawnChild(spec);
  started(child);
  const code = await child.exited;
  if (code !== 0) throw new Error(`${spec.name} failed (exit ${code ?? 'by signal'}):\n${child.logTail()}`);
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
