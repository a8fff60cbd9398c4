import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import format from 'pg-format';
import { startPrivateCluster } from '../scripts/faults/private-services.js';
import { buildIfStale, type RunningProcess, startProcess } from '../scripts/faults/processes.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/db/migrate.js';
import { scanKeys } from '../src/redis/scan.js';
import { pidsNamed, type WatchedProcess } from './proc-stats.js';
import { type CommandStats, mergeCommandStats, parseCommandStats } from './redis-stats.js';

/** What a started target lives in, removed by `stop()` (the floor has no database and no queues). */
export interface Throwaway {
  database: string | null;
  keyPrefix: string;
  queuePrefix: string | null;
  /** The seeds of the private Redis Cluster the run used (--redis-cluster; destroyed with its data), else null. */
  redisCluster?: string[] | null;
}

/** A process whose /metrics has the runtime histograms (event-loop delay, GC pauses). */
export interface MetricsSource {
  label: string;
  url: string;
}

/** What a run talks to: a Parley the bench started, one given by --url, or the floor (bench/floor/). */
export interface Target {
  kind: 'parley' | 'floor';
  apiUrls: string[];
  /** The api processes' labels in `apiUrls` order (api1..., relay1..., `parley` for --all-in-one). */
  apiLabels: string[];
  /** The api processes' /metrics URLs (persistence lag, queue depths); empty for the floor. */
  apiMetricsUrls: string[];
  /** The workers' /metrics URLs (empty when unknown). */
  workerMetricsUrls: string[];
  /** Server processes whose CPU and RSS are reported (CPU per message and RSS add these up). */
  processes: WatchedProcess[];
  /** One /metrics per server process, for its event-loop delay and GC pauses (empty for the floor). */
  runtimeSources: MetricsSource[];
  /**
   * Redis and PostgreSQL when they run on this machine (every `postgres` process, its backends
   * included, as of the call), for where the rest of the CPU goes.
   */
  services(): WatchedProcess[];
  /** Redis's INFO commandstats (null when the bench does not know which Redis the target uses). */
  redisCommandStats: (() => Promise<CommandStats>) | null;
  /** Messages stored in PostgreSQL, or null when the bench cannot see the database. */
  countRows: (() => Promise<number>) | null;
  /** The database and prefixes of a target the bench started (null for a given one). */
  throwaway: Throwaway | null;
  /** Stops what the bench started and removes its database and keys; leaves a given one alone. */
  stop(): Promise<void>;
}

export interface StartOptions {
  apis: number;
  workers: number;
  /** Overrides for the processes' environment (--env, --heartbeat-ms). */
  env: Record<string, string>;
  cpuProf: boolean;
  /** `compiled`: dist/, built first when stale, as production runs it; `tsx`: the sources through tsx. */
  runtime: Runtime;
  /** One process running the api and the workers, as `npm start` does (scripts/start.ts), instead of `apis` + `workers`. */
  allInOne?: boolean;
  /** On a private 3-master Redis Cluster of its own (REDIS_CLUSTER_NODES) instead of REDIS_URL. */
  redisCluster?: boolean;
}

/** Where the started processes keep their Redis data, and what the bench reads of it. */
interface RedisSide {
  /** REDIS_URL, or REDIS_CLUSTER_NODES (the cluster's seeds). */
  env: Record<string, string>;
  /** The seeds of a private cluster, else null. */
  seeds: string[] | null;
  /** INFO commandstats, added up over the cluster's nodes. */
  commandStats(): Promise<CommandStats>;
  /** The redis-server processes when they run on this machine. */
  pids(): Promise<number[]>;
  /** Removes what the run left: its keys on the shared Redis, or the whole private cluster. */
  cleanup(patterns: string[]): Promise<void>;
}

async function sharedRedis(url: string, password: string | undefined): Promise<RedisSide> {
  const redis = new Redis(url, { password, maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined); // commands report failures; stop() must not crash on them
  return {
    env: { REDIS_URL: url },
    seeds: null,
    commandStats: async () => parseCommandStats(await redis.info('commandstats')),
    pids: async () => {
      if (!isLocal(new URL(url).hostname)) return [];
      const pid = await redisServerPid(redis).catch(() => null);
      return pid ? [pid] : [];
    },
    async cleanup(patterns) {
      await deleteKeys(redis, patterns).catch((err: Error) =>
        console.error(`bench: could not delete keys ${patterns.join(' / ')}: ${err.message}`),
      );
      redis.disconnect();
    },
  };
}

/** A private 3-master cluster (no replicas: the bench kills nothing), its nodes read one by one. */
async function privateCluster(): Promise<RedisSide> {
  const cluster = await startPrivateCluster({ masters: 3, replicasPerMaster: 0 });
  const nodes = cluster.nodes.map((n) => {
    const c = new Redis({ host: '127.0.0.1', port: n.port, maxRetriesPerRequest: 3 });
    c.on('error', () => undefined);
    return c;
  });
  return {
    env: { REDIS_CLUSTER_NODES: cluster.seedList },
    seeds: [...cluster.seeds],
    commandStats: async () =>
      mergeCommandStats(await Promise.all(nodes.map(async (c) => parseCommandStats(await c.info('commandstats'))))),
    pids: async () =>
      (await Promise.all(nodes.map((c) => redisServerPid(c).catch(() => null)))).filter((p): p is number => p !== null),
    async cleanup() {
      for (const c of nodes) c.disconnect();
      await cluster.destroy();
    },
  };
}

export type Runtime = 'compiled' | 'tsx';

const ENTRY_POINTS: Record<Runtime, { api: string; worker: string; allInOne: string }> = {
  compiled: { api: 'dist/src/main.js', worker: 'dist/workers/main.js', allInOne: 'dist/scripts/start.js' },
  tsx: { api: 'src/main.ts', worker: 'workers/main.ts', allInOne: 'scripts/start.ts' },
};

export const PROFILE_DIR = fileURLToPath(new URL('../.bench/profiles/', import.meta.url));
/** The lines the entry points print once ready (the worker's metrics URL comes first). */
const API_READY = /parley api listening on (http:\/\/\S+)/;
const WORKER_READY = /parley worker metrics on (http:\/\/\S+)\/metrics[\s\S]*parley worker ready/;
/** `npm start` starts the api first, then the workers. */
const ALL_IN_ONE_READY = /parley api listening on (http:\/\/\S+)[\s\S]*parley worker ready/;

/**
 * Settings of the processes the bench starts. The limits that protect a real deployment from one
 * user (sends and frames per second, registrations, chats and connections) are raised far above what the load needs, so they are still
 * checked on every send but never refuse one; the lag gauges (a Redis SCAN) are computed at most once a second.
 */
const BENCH_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  WORKER_METRICS_PORT: '0',
  LOG_LEVEL: 'warn',
  PASSWORD_HASH_COST: '1024',
  // The lag gauges' SCAN at most once a second (the bench polls a worker's every second).
  METRICS_LAG_MAX_AGE_MS: '1000',
  SEND_RATE_BURST: '100000',
  SEND_RATE_PER_S: '100000',
  WS_FRAME_BURST: '100000',
  WS_FRAME_RATE_PER_S: '100000',
  // The bench registers its accounts and creates its chats from one address, far past the abuse
  // limits of a real deployment.
  REGISTRATIONS_PER_MIN: '1000000',
  LOGINS_PER_MIN: '1000000',
  CHATS_CREATED_PER_MIN: '1000000',
  MEMBER_ADDS_PER_MIN: '1000000',
  WS_MAX_CONNECTIONS_PER_USER: '100000',
};

/** A given Parley (--url): the bench only talks to it. */
export function externalTarget(opts: {
  urls: string[];
  workerMetricsUrls: string[];
  databaseUrl: string | undefined;
  pids: number[];
}): Target {
  const pool = opts.databaseUrl ? new pg.Pool({ connectionString: opts.databaseUrl, max: 1 }) : undefined;
  return {
    kind: 'parley',
    apiUrls: opts.urls,
    apiLabels: opts.urls.map((_, i) => `api${i + 1}`),
    apiMetricsUrls: opts.urls.map((u) => `${u}/metrics`),
    workerMetricsUrls: opts.workerMetricsUrls,
    processes: opts.pids.map((pid, i) => ({ label: `server${i + 1}`, pid })),
    runtimeSources: [
      ...opts.urls.map((url, i) => ({ label: `api${i + 1}`, url: `${url}/metrics` })),
      ...opts.workerMetricsUrls.map((url, i) => ({ label: `worker${i + 1}`, url })),
    ],
    services: () => [],
    redisCommandStats: null,
    throwaway: null,
    countRows: pool ? () => countMessages(pool) : null,
    stop: async () => void (await pool?.end()),
  };
}

async function countMessages(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
  return rows[0]!.n;
}

/**
 * The started processes' environment: the bench's settings, the throwaway database and prefixes,
 * Redis (REDIS_URL, or REDIS_CLUSTER_NODES for a cluster: then no REDIS_URL, and REDIS_PASSWORD
 * emptied, since a private cluster has none), then the caller's overrides.
 */
export function processEnv(opts: {
  databaseUrl: string;
  redis: Record<string, string>;
  keyPrefix: string;
  queuePrefix: string;
  overrides: Record<string, string>;
}): Record<string, string> {
  const cluster = opts.redis.REDIS_CLUSTER_NODES !== undefined;
  return {
    ...BENCH_ENV,
    DATABASE_URL: opts.databaseUrl,
    ...opts.redis,
    ...(cluster ? { REDIS_PASSWORD: '' } : {}),
    REDIS_KEY_PREFIX: opts.keyPrefix,
    QUEUE_PREFIX: opts.queuePrefix,
    ...opts.overrides,
  };
}

/**
 * Starts a private Parley: a throwaway database on DATABASE_URL's server, a key and queue prefix
 * of its own on REDIS_URL (or, with `redisCluster`, a private 3-master Redis Cluster of its own,
 * REDIS_CLUSTER_NODES), `apis` api processes and `workers` worker processes (the real entry
 * points), or with `allInOne` the one process `npm start` runs (DATABASE_URL and REDIS_URL or
 * REDIS_CLUSTER_NODES set, so it starts no embedded server). `stop()` ends them and removes the
 * database and every key with those prefixes (or the whole cluster).
 */
export async function startTarget(opts: StartOptions): Promise<Target> {
  const base = loadConfig();
  const id = randomBytes(4).toString('hex');
  const dbName = `parley_bench_${id}`;
  const dbUrl = new URL(base.DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const adminUrl = new URL(base.DATABASE_URL);
  adminUrl.pathname = '/postgres';
  const keyPrefix = `bench${id}:`;
  const queuePrefix = `{bench${id}}`;
  const procs: RunningProcess[] = [];
  let pool: pg.Pool | undefined;
  const redis = opts.redisCluster ? await privateCluster() : await sharedRedis(base.REDIS_URL, base.REDIS_PASSWORD);

  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  async function stop(): Promise<void> {
    await Promise.all(procs.map((p) => stopProcess(p)));
    await pool?.end().catch(() => undefined);
    await redis.cleanup([`${keyPrefix}*`, `${queuePrefix}*`]);
    await admin(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', dbName)).catch((err: Error) =>
      console.error(`bench: could not drop database ${dbName}: ${err.message}`),
    );
  }

  try {
    await admin(format('CREATE DATABASE %I', dbName));
    pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
    await migrate(pool);
    const env = processEnv({
      databaseUrl: dbUrl.toString(),
      redis: redis.env,
      keyPrefix,
      queuePrefix,
      overrides: opts.env,
    });
    // A profile per process, written when it exits (the bench stops them with SIGTERM).
    const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
    if (opts.cpuProf) mkdirSync(PROFILE_DIR, { recursive: true });
    if (opts.runtime === 'compiled') await buildIfStale();
    const files = ENTRY_POINTS[opts.runtime];
    if (opts.allInOne) {
      procs.push(await startProcess(files.allInOne, env, ALL_IN_ONE_READY, 30_000, nodeArgs));
    } else {
      // Started one by one, so that start-up errors are clear.
      for (let i = 0; i < opts.apis; i++) procs.push(await startProcess(files.api, env, API_READY, 30_000, nodeArgs));
      for (let i = 0; i < opts.workers; i++)
        procs.push(await startProcess(files.worker, env, WORKER_READY, 30_000, nodeArgs));
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const redisPids = await redis.pids();
  const pgLocal = isLocal(dbUrl.hostname);
  const rowsPool = pool;
  return {
    kind: 'parley',
    ...(opts.allInOne ? allInOneLayout(procs[0]!) : separateLayout(procs.slice(0, opts.apis), procs.slice(opts.apis))),
    services: () => [
      ...redisPids.map((pid) => ({ label: 'redis', pid })),
      ...(pgLocal ? pidsNamed('postgres').map((pid) => ({ label: 'postgres', pid })) : []),
    ],
    redisCommandStats: () => redis.commandStats(),
    countRows: () => countMessages(rowsPool),
    throwaway: { database: dbName, keyPrefix, queuePrefix, redisCluster: redis.seeds },
    stop,
  };
}

type Layout = Pick<
  Target,
  'apiUrls' | 'apiLabels' | 'apiMetricsUrls' | 'workerMetricsUrls' | 'processes' | 'runtimeSources'
>;

function separateLayout(apis: RunningProcess[], workers: RunningProcess[]): Layout {
  return {
    apiUrls: apis.map((p) => p.url),
    apiLabels: apis.map((_, i) => `api${i + 1}`),
    apiMetricsUrls: apis.map((p) => `${p.url}/metrics`),
    workerMetricsUrls: workers.map((p) => `${p.url}/metrics`),
    processes: [
      ...apis.map((p, i) => ({ label: `api${i + 1}`, pid: p.proc.pid! })),
      ...workers.map((p, i) => ({ label: `worker${i + 1}`, pid: p.proc.pid! })),
    ],
    runtimeSources: [
      ...apis.map((p, i) => ({ label: `api${i + 1}`, url: `${p.url}/metrics` })),
      ...workers.map((p, i) => ({ label: `worker${i + 1}`, url: `${p.url}/metrics` })),
    ],
  };
}

/**
 * `npm start`'s one process, labelled `parley`. Its api and its workers keep a metrics registry
 * each, both measuring the same event loop and GC: the api's /metrics stands for the process.
 */
function allInOneLayout(p: RunningProcess): Layout {
  const workerMetrics = /parley worker metrics on (http:\/\/\S+\/metrics)/.exec(p.output())?.[1];
  return {
    apiUrls: [p.url],
    apiLabels: ['parley'],
    apiMetricsUrls: [`${p.url}/metrics`],
    workerMetricsUrls: workerMetrics ? [workerMetrics] : [],
    processes: [{ label: 'parley', pid: p.proc.pid! }],
    runtimeSources: [{ label: 'parley', url: `${p.url}/metrics` }],
  };
}

/** SIGTERM (a clean shutdown writes --cpu-prof profiles), then SIGKILL if it takes over 15 s. */
export async function stopProcess(p: RunningProcess): Promise<void> {
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 15_000);
  await p.kill('SIGTERM');
  clearTimeout(timer);
}

export const isLocal = (host: string) => host === 'localhost' || host.startsWith('127.') || host === '[::1]';

/** The pid Redis reports (INFO server). */
export async function redisServerPid(redis: Redis): Promise<number | null> {
  const m = /process_id:(\d+)/.exec(await redis.info('server'));
  return m ? Number(m[1]) : null;
}

export async function deleteKeys(redis: Redis, patterns: string[]): Promise<void> {
  for (const pattern of patterns) for await (const keys of scanKeys([redis], pattern)) await redis.unlink(...keys);
}
