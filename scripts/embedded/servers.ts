import { existsSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Config } from '../../src/config.js';
import { type ShutdownBudget, shutdownStep } from '../../src/infra/shutdown.js';
import type { Logger } from '../../src/logger.js';
import type { Child } from './child.js';
import { loadSecrets, lockDataDir, prepareDataDir, type Secrets } from './data-dir.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './postgres.js';
import { type EmbeddedRedis, findRedisServer, startEmbeddedRedis } from './redis.js';

/**
 * docs/protocol.md's embedded defaults for `npm start`: the servers whose settings are unset run here,
 * with their data in PARLEY_DATA_DIR. What they need is handed to the api and the workers as
 * config overrides; what was chosen is said once, one line per server.
 */
export interface ServersReady {
  /** Config overrides (DATABASE_URL, REDIS_URL, REDIS_PASSWORD, REDIS_ENABLED, ...): secrets, never log them. */
  env: Record<string, string>;
  /** What is used and where, one line per server, e.g. `PostgreSQL: embedded PostgreSQL 15.18, ./.parley/pg`. */
  summary: string[];
}

export interface Servers {
  ready: Promise<ServersReady>;
  /** True once `ready` resolved. */
  isReady(): boolean;
  /** True when this start runs a server of its own (its stop then needs a share of the budget). */
  readonly any: boolean;
  /** Stops what was started or is starting (a first start's initdb included), each within SERVERS_STOP_MS. */
  stop(budget: ShutdownBudget): Promise<void>;
}

/** What a stop of the servers needs at most: PostgreSQL's fast shutdown (a checkpoint), redis-server's AOF flush. */
export const SERVERS_STOP_MS = 3000;

/** Names the file that records that Redis has run with this folder's PostgreSQL. */
const REDIS_USED = 'redis-used';

/** The oldest redis-server Parley runs on (sharded pub/sub, the scripts' commands). */
const REDIS_MIN_MAJOR = 7;

/** `env`: the raw environment, to tell the settings left unset (as embeddedServers does). */
export function startServers(
  config: Config,
  embedded: { postgres: boolean; redis: boolean },
  logger: Logger,
  env: Record<string, string | undefined> = process.env,
): Servers {
  const dir = config.PARLEY_DATA_DIR;
  const shown = (path: string) => (isAbsolute(path) || path.startsWith('../') ? path : `./${path}`);
  const children = new Set<Child>();
  let stopping = false;
  let ready = false;
  let release = () => {};
  const onChild = (child: Child) => {
    children.add(child);
    // Once serving, a server that goes away is not restarted (the api rides out a Redis outage in
    // degraded mode; PostgreSQL's is an outage all the same): it is said, with where to look.
    void child.exited.then((code) => {
      if (ready && !stopping)
        logger.error(
          { server: child.name, pid: child.pid, code, log: child.logTail(5) },
          'a server npm start runs exited; start again to restart it',
        );
    });
    // A stop that came while this one was starting: it stops at once too.
    if (stopping) void child.stop(SERVERS_STOP_MS);
  };
  const check = () => {
    if (stopping) throw new Error('stopped while starting');
  };

  async function start(): Promise<ServersReady> {
    const overrides: Record<string, string> = {};
    const summary: string[] = [];
    if (!embedded.postgres) summary.push(`PostgreSQL: ${where(config.DATABASE_URL)} (DATABASE_URL)`);
    if (!embedded.redis) {
      summary.push(
        config.REDIS_CLUSTER_NODES !== undefined
          ? `Redis: cluster ${config.REDIS_CLUSTER_NODES.join(',')} (REDIS_CLUSTER_NODES)`
          : config.REDIS_ENABLED
            ? `Redis: ${where(config.REDIS_URL)} (REDIS_URL)`
            : 'Redis: none (REDIS_ENABLED=false: PostgreSQL-only mode)',
      );
    }
    const redisServer = embedded.redis ? await findRedisServer(env.PATH) : undefined;
    if (redisServer && !(Number.parseInt(redisServer.version, 10) >= REDIS_MIN_MAJOR)) {
      throw new Error(
        `${redisServer.path} is Redis ${redisServer.version}; Parley needs Redis ${REDIS_MIN_MAJOR} or later: upgrade it, or set REDIS_URL`,
      );
    }
    const pgDir = join(dir, 'pg');
    const redisDir = join(dir, 'redis');
    let pgReady: EmbeddedPostgres | undefined;
    let redisReady: EmbeddedRedis | undefined;
    let secrets: Secrets | undefined;
    if (embedded.postgres || redisServer) {
      prepareDataDir(dir, embedded.postgres && process.getuid?.() === 0);
      release = lockDataDir(dir).release;
      secrets = loadSecrets(dir, embedded.postgres && existsSync(join(pgDir, 'PG_VERSION')) ? pgDir : undefined);
      const postgres = embedded.postgres
        ? startEmbeddedPostgres({
            dataDir: pgDir,
            password: secrets.postgres,
            database: 'parley',
            onChild,
            onInit: () => console.log(`PostgreSQL: first start, making its cluster in ${shown(pgDir)}`),
          })
        : undefined;
      const redis = redisServer
        ? startEmbeddedRedis(redisServer, { dir: redisDir, password: secrets.redis, onChild })
        : undefined;
      [pgReady, redisReady] = await Promise.all([postgres, redis]);
      check();
    }

    if (pgReady) {
      overrides.DATABASE_URL = pgReady.url;
      summary.unshift(`PostgreSQL: embedded ${pgReady.version}, ${shown(pgDir)}`);
      // Which seq rule PostgreSQL-only mode may use on this cluster (see below).
      if (redisReady || (!embedded.redis && config.REDIS_ENABLED))
        writeFileSync(
          join(dir, REDIS_USED),
          'Redis has run with this PostgreSQL: PostgreSQL-only mode keeps the degraded seq gap.\n',
        );
    }
    if (redisReady && redisServer && secrets) {
      overrides.REDIS_URL = redisReady.url;
      overrides.REDIS_PASSWORD = secrets.redis;
      summary.push(`Redis: redis-server ${redisServer.version} (child), ${shown(redisDir)}`);
    } else if (embedded.redis) {
      overrides.REDIS_ENABLED = 'false';
      // A degraded run's first seq jumps a gap above PostgreSQL, for what a Redis may have issued
      // and not persisted. No Redis ever ran on this cluster: nothing to jump over, seqs start at 1.
      if (pgReady && !existsSync(join(dir, REDIS_USED)) && env.DEGRADED_SEQ_GAP === undefined)
        overrides.DEGRADED_SEQ_GAP = '1';
      const install =
        process.platform === 'darwin'
          ? 'brew install redis'
          : `${process.getuid?.() === 0 ? '' : 'sudo '}apt install redis-server`;
      summary.push(
        `Redis: none (PostgreSQL-only mode: no redis-server on the PATH; presence and typing are off; to add Redis: ${install}, then npm start again)`,
      );
    }
    return { env: overrides, summary };
  }

  const started = start().then((r) => {
    ready = true;
    return r;
  });
  return {
    ready: started,
    isReady: () => ready,
    any: embedded.postgres || embedded.redis,
    async stop(budget) {
      stopping = true;
      const stopAll = () =>
        Promise.all(
          [...children].map((child) =>
            shutdownStep(budget, logger, `${child.name} (pid ${child.pid})`, SERVERS_STOP_MS, async () => {
              if ((await child.stop(SERVERS_STOP_MS)) === 'forced') throw new Error('did not stop in time: forced');
            }),
          ),
        );
      await stopAll();
      if (!ready) {
        // A start under way gives up once its process is stopped; one it spawned meanwhile was
        // stopped on arrival (onChild), and is waited for here.
        await shutdownStep(budget, logger, 'servers: startup', 1000, () => started.catch(() => undefined));
        await stopAll();
      }
      release();
    },
  };
}

/** host:port/database of a URL, without its credentials. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}
