import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import pg from 'pg';
import type { Config } from '../config.js';
import type { RedisClient } from '../redis/client.js';

/**
 * Client factories for the composition roots (src/main.ts, workers/main.ts). No other module
 * creates a client: each receives the ones it needs.
 */
export type RedisRole =
  /** The api's command connection: fails fast so a Redis outage is noticed in milliseconds. */
  | 'command'
  /** A pub/sub subscriber: its own connection, reconnecting forever. */
  | 'subscriber'
  /** BullMQ producers and workers: retry forever (BullMQ requires maxRetriesPerRequest null). */
  | 'queue';

/** Reconnect quickly at first, then every 500 ms: a returning Redis is noticed within that. */
const reconnectDelay = (times: number) => Math.min(50 * 2 ** times, 500);

export function createRedis(config: Config, role: RedisRole, name = 'parley'): Redis {
  const base: RedisOptions = {
    connectionName: `${name}:${role}`,
    connectTimeout: config.REDIS_CONNECT_TIMEOUT,
    retryStrategy: reconnectDelay,
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
  };
  const byRole: Record<RedisRole, RedisOptions> = {
    command: {
      enableOfflineQueue: false,
      commandTimeout: config.REDIS_COMMAND_TIMEOUT,
      maxRetriesPerRequest: 0,
      // No auto-pipelining: it defers every command to the next setImmediate and builds a
      // Pipeline per tick, which copies every defined script onto it. Measured under the bench's
      // small scenario: ack p99 13 ms with it, 4 ms without; the api's CPU per message 30 % lower.
      enableAutoPipelining: false,
    },
    subscriber: { maxRetriesPerRequest: null },
    // BullMQ defines some forty scripts on its connections: a Pipeline per tick would copy them all.
    queue: { maxRetriesPerRequest: null, enableAutoPipelining: false },
  };
  return new Redis(config.REDIS_URL, { ...base, ...byRole[role] });
}

/** A REDIS_CLUSTER_NODES seed, `host:port` or `[v6]:port`, as ioredis takes it. */
export function parseClusterSeed(seed: string): { host: string; port: number } {
  const at = seed.lastIndexOf(':');
  const host = seed.slice(0, at);
  return {
    host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
    port: Number(seed.slice(at + 1)),
  };
}

/**
 * The options of createRedisCluster (exported for its unit test): a role's options of
 * createRedis, split as ioredis's Cluster takes them (what its own queueing and retrying decide
 * at the top, what each node connection takes under redisOptions).
 */
export function clusterOptions(config: Config, role: RedisRole, name = 'parley'): ClusterOptions {
  const redisOptions: ClusterOptions['redisOptions'] = {
    connectionName: `${name}:${role}`,
    connectTimeout: config.REDIS_CONNECT_TIMEOUT,
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
    ...(role === 'command'
      ? { commandTimeout: config.REDIS_COMMAND_TIMEOUT, maxRetriesPerRequest: 0 }
      : { maxRetriesPerRequest: null }),
  };
  return {
    redisOptions,
    // Every command on its slot's master: the contract reads what it just wrote (a replica lags).
    scaleReads: 'master',
    // 'ready' once CLUSTER INFO says the cluster is ok, not on the first socket.
    enableReadyCheck: true,
    // The command connection fails fast while the cluster is not ready, as createRedis's does.
    enableOfflineQueue: role !== 'command',
    // ...and while its slot's master is dead: ioredis retries a command refused for a closed
    // connection, CLUSTERDOWN or TRYAGAIN every 100 ms up to maxRedirections times (16 by
    // default, so until the command timeout). Measured on the local cluster with a master
    // SIGKILLed: a command on its slots failed after 1000 ms with the default, 100-300 ms with 3;
    // a MOVED after a failover costs one.
    ...(role === 'command' ? { maxRedirections: 3 } : {}),
    // See createRedis: no Pipeline per tick (BullMQ's scripts, the api's latency).
    enableAutoPipelining: false,
    clusterRetryStrategy: reconnectDelay,
    // The slot map read again every second, whatever the traffic: a failover is noticed even on
    // slots no single command touched since (pipelines do not always make ioredis refresh it).
    slotsRefreshInterval: 1000,
    // One subscriber connection per master holding subscribed channels: SSUBSCRIBE goes to the
    // slot's master, so a sharded channel's messages never cross the cluster bus.
    shardedSubscribers: role === 'subscriber',
  };
}

/** createRedis's counterpart on a Redis Cluster (REDIS_CLUSTER_NODES). */
export function createRedisCluster(config: Config, role: RedisRole, name = 'parley'): Cluster {
  const seeds = config.REDIS_CLUSTER_NODES;
  if (seeds === undefined) throw new Error('createRedisCluster: REDIS_CLUSTER_NODES is not set');
  return new Cluster(seeds.map(parseClusterSeed), clusterOptions(config, role, name));
}

/**
 * The client of a role on what the config names: a Redis Cluster when REDIS_CLUSTER_NODES is set,
 * else the one Redis of REDIS_URL.
 */
export function createRedisClient(config: Config, role: RedisRole, name = 'parley'): RedisClient {
  return config.REDIS_CLUSTER_NODES === undefined
    ? createRedis(config, role, name)
    : createRedisCluster(config, role, name);
}

/**
 * A client for PostgreSQL-only mode (REDIS_ENABLED=false) that never opens a socket: it is ended
 * before it connects, so every command fails at once, as in a Redis outage, and the api's
 * degraded paths serve. Nothing retries a connection or logs one failing.
 */
export function createClosedRedis(role: RedisRole, name = 'parley'): Redis {
  const client = new Redis({ lazyConnect: true, connectionName: `${name}:${role}`, enableOfflineQueue: false });
  client.disconnect();
  return client;
}

const INT8_OID = 20;
const TIMESTAMPTZ_OID = 1184;

/**
 * bigint columns (seq) come back as numbers (seqs stay far below 2^53) and timestamptz as ISO-8601
 * UTC strings, the contract's format, without touching pg's global parsers.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID) return (v: string) => Number(v);
    if (oid === TIMESTAMPTZ_OID) return (v: string) => new Date(v).toISOString();
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

export function createPgPool(config: Config, applicationName = 'parley'): pg.Pool {
  return new pg.Pool({
    types,
    connectionString: config.DATABASE_URL,
    max: config.PG_POOL_MAX,
    application_name: applicationName,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
}

/** A single connection (LISTEN needs one of its own; a pool would hand it out to queries). */
export function createPgClient(config: Config, applicationName = 'parley'): pg.Client {
  return new pg.Client({ connectionString: config.DATABASE_URL, application_name: applicationName, types });
}
