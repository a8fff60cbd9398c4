import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorText } from '../../src/domain/errors.js';

/**
 * PARLEY_DATA_DIR: the folder of the servers `npm start` runs itself, their passwords, and a
 * lock that keeps two `npm start` from running on it at once.
 *
 *   secrets.json      the generated passwords (mode 0600), kept across starts
 *   npm-start.pid     the pid of the `npm start` using the folder (the lock)
 *   pg/, pg.log       PostgreSQL's data directory and log
 *   redis/            redis-server's AOF, config (with its password: 0600) and log
 */
export interface Secrets {
  postgres: string;
  redis: string;
}

/**
 * Creates the folder: private, except that a PostgreSQL running as another user (npm start as
 * root) must be able to pass through it to its own data directory (mode 0711: not listable).
 */
export function prepareDataDir(dir: string, otherUserInside: boolean): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (otherUserInside) chmodSync(dir, 0o711);
}

/**
 * The passwords of the folder's servers, generated on its first start. `madeWith`: a server's
 * data that exists already, and so needs the stored password (a new one would lock it out).
 */
export function loadSecrets(dir: string, madeWith?: string): Secrets {
  const file = join(dir, 'secrets.json');
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<Secrets>;
    if (typeof stored.postgres === 'string' && typeof stored.redis === 'string')
      return { postgres: stored.postgres, redis: stored.redis };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`${file} is unreadable (${errorText(err)}): delete it only together with the folder's data`);
  }
  if (madeWith !== undefined)
    throw new Error(
      `${file} is missing, and ${madeWith} was made with the password it held: restore it, or delete the whole folder to start afresh`,
    );
  // Hex: safe in a URL and a config file without escaping.
  const secrets: Secrets = { postgres: randomBytes(24).toString('hex'), redis: randomBytes(24).toString('hex') };
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return secrets;
}

/** True when `pid` is a live process, and, where /proc tells, one whose command line holds `name`. */
export function isRunning(pid: number, name: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(name);
  } catch {
    return true; // no /proc (macOS): a live pid is taken at its word
  }
}

/**
 * Takes the folder for this process. Refused while another live `npm start` holds it; the file
 * of one that died (killed outright) is taken over, and its servers are then leftovers.
 */
export function lockDataDir(dir: string): { release(): void } {
  const file = join(dir, 'npm-start.pid');
  try {
    writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (holder !== process.pid && Number.isInteger(holder) && isRunning(holder, 'node')) {
      throw new Error(
        `another npm start (pid ${holder}) is using ${dir}: stop it first, or give this one its own PARLEY_DATA_DIR`,
      );
    }
    writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.on('exit', release);
  return { release };
}

/**
 * Stops a server of this folder that an earlier `npm start`, killed outright, left running
 * (found by its pid file), and removes a pid file whose process is gone or is something else.
 */
export async function stopLeftover(
  pidFile: string,
  name: string,
  signal: NodeJS.Signals,
  waitMs = 10_000,
): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid, name)) {
    try {
      unlinkSync(pidFile);
    } catch {
      // already gone
    }
    return undefined;
  }
  process.kill(pid, signal);
  const deadline = Date.now() + waitMs;
  while (isRunning(pid, name)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pid;
}
