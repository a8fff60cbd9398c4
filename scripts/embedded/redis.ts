import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { type Child, spawnChild } from './child.js';
import { stopLeftover } from './data-dir.js';
import { freePort, waitUntilServing } from './serving.js';

/**
 * The redis-server `npm start` runs as its child when no Redis is given: the one on the PATH,
 * with AOF on (an ack survives a kill) and `noeviction` (BullMQ and the unpersisted messages
 * need it), its data in PARLEY_DATA_DIR/redis, on 127.0.0.1 and a free port, with a password.
 * Everything goes through a config file of mode 0600, so the password is not on a command line.
 */
const run = promisify(execFile);
/** Loading a large AOF takes a while; PING answers LOADING until it is done. */
const READY_TIMEOUT_MS = 120_000;

export interface RedisServer {
  path: string;
  /** E.g. `7.0.15`. */
  version: string;
}

export interface EmbeddedRedis {
  /** redis://127.0.0.1:PORT (the password goes apart, in REDIS_PASSWORD). */
  url: string;
  child: Child;
}

/** The redis-server on `PATH`, or undefined when there is none. */
export async function findRedisServer(path = process.env.PATH ?? ''): Promise<RedisServer | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const file = join(dir, 'redis-server');
    try {
      accessSync(file, constants.X_OK);
      if (!statSync(file).isFile()) continue;
    } catch {
      continue;
    }
    // `Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=...`
    const { stdout } = await run(file, ['--version']);
    return { path: file, version: /v=(\S+)/.exec(stdout)?.[1] ?? 'unknown version' };
  }
  return undefined;
}

export async function startEmbeddedRedis(
  server: RedisServer,
  opts: { dir: string; password: string; onChild: (child: Child) => void },
): Promise<EmbeddedRedis> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pidFile = join(dir, 'redis.pid');
  const leftover = await stopLeftover(pidFile, 'redis-server', 'SIGTERM');
  if (leftover !== undefined)
    console.log(`Redis: stopped the redis-server an earlier npm start left running (pid ${leftover})`);

  const port = await freePort();
  const conf = join(dir, 'redis.conf');
  // Written at every start (the port changes); `dir` before the files named relative to it.
  const settings = [
    `# Written by npm start at every start: changes here are lost.`,
    `bind 127.0.0.1`,
    `port ${port}`,
    `protected-mode yes`,
    `requirepass ${opts.password}`,
    `dir ${dir}`,
    `appendonly yes`,
    `appendfsync everysec`,
    `save ""`,
    `maxmemory-policy noeviction`,
    `daemonize no`,
    `pidfile ${pidFile}`,
    `logfile ${join(dir, 'redis.log')}`,
  ];
  writeFileSync(conf, `${settings.join('\n')}\n`, { mode: 0o600 });
  const child = await spawnChild({
    name: 'redis-server',
    command: server.path,
    args: [conf],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    // Its own log is `logfile`; this one only catches what it prints before opening it.
    logFile: join(dir, 'redis.log'),
    stopSignal: 'SIGTERM',
    forceSignal: 'SIGKILL',
  });
  opts.onChild(child);
  const url = `redis://127.0.0.1:${port}`;
  await waitUntilServing(child, READY_TIMEOUT_MS, '', async () => {
    const client = new Redis(url, {
      password: opts.password,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.disconnect();
    }
  });
  return { url, child };
}
