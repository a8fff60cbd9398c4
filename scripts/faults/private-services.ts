import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from '../embedded/serving.js';

/**
 * Private Redis and PostgreSQL servers on free ports, for tests and the fault checker that kill
 * and restart them. The machine's shared servers are never touched.
 */
const run = promisify(execFile);

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (with its AOF, if on). */
  start(): Promise<void>;
  /** Deletes its data directory: the next start is empty, as after a disk loss. */
  wipe(): void;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

export async function startPrivateRedis({ aof }: { aof: boolean }): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  let proc: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const alive = () => proc !== undefined && proc.exitCode === null && proc.signalCode === null;

  async function start(): Promise<void> {
    if (alive()) return;
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--dir',
        dir,
        '--appendonly',
        aof ? 'yes' : 'no',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    await until(async () => {
      if (!alive()) throw new Error(`redis-server on ${port} exited at start`);
      const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, `redis on ${port}`);
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  }

  await start();
  return {
    url,
    port,
    kill,
    start,
    wipe: () => {
      for (const f of readdirSync(dir)) if (f !== 'redis.log') rmSync(join(dir, f), { recursive: true, force: true });
    },
    async destroy() {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  /** Base URL without a database name, e.g. postgres://postgres@127.0.0.1:PORT */
  baseUrl: string;
  /** Stops the server at once (immediate shutdown: no checkpoint, like a crash). */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

function pgBin(name: string): string {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1);
  if (version === undefined) throw new Error('no PostgreSQL installed under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${version}/bin/${name}`;
}

/** initdb and pg_ctl refuse to run as root: run them as the postgres user when we are root. */
async function asPostgres(cmd: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
  else await run(cmd, args);
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  await asPostgres(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const baseUrl = `postgres://postgres@127.0.0.1:${port}`;

  async function start(): Promise<void> {
    await asPostgres(pgBin('pg_ctl'), [
      '-D',
      data,
      '-w',
      '-l',
      join(dir, 'pg.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
    await until(async () => {
      const c = new pg.Client({ connectionString: `${baseUrl}/postgres` });
      try {
        await c.connect();
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, `postgres on ${port}`);
  }

  async function stop(): Promise<void> {
    await asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  }

  await start();
  return {
    baseUrl,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
