import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import format from 'pg-format';
import { inject } from 'vitest';
import { type Config, loadConfig } from '../../src/config.js';
import { createPgPool, parseClusterSeed } from '../../src/infra/clients.js';
import { keyNodes, type RedisClient, unlinkKeys } from '../../src/redis/client.js';
import { scanKeys } from '../../src/redis/scan.js';
import { ADMIN_URL, databaseUrl, REDIS_URL } from './pg.js';

export interface TestEnv {
  /** Environment variables for processes started by the test (config overrides included). */
  env: Record<string, string>;
  config: Config;
  databaseName: string;
  /** A pool on the test's database for assertions (ended by cleanup). */
  pool: pg.Pool;
  /** A Redis client for assertions (closed by cleanup): a Cluster client on the cluster. */
  redis: RedisClient;
  /** Which Redis the test runs on. */
  kind: RedisKind;
  /** Drops the database and deletes every key with the test's prefixes. */
  cleanup(): Promise<void>;
}

/** The shared Redis (127.0.0.1:6379), or the run's local Redis Cluster (global-setup.ts). */
export type RedisKind = 'single' | 'cluster';

/** Both kinds, for tests that run the same checks on each (`describe.each(REDIS_KINDS)`). */
export const REDIS_KINDS: readonly RedisKind[] = ['single', 'cluster'];

/**
 * A private world for one test file: a database cloned from the migrated template, and a Redis
 * key prefix and BullMQ prefix nobody else uses. `overrides` are config keys (e.g. ACTIVE_LIST_MAX).
 * `redis: 'cluster'` runs it on the run's local Redis Cluster (REDIS_CLUSTER_NODES).
 */
export async function createTestEnv(
  overrides: Record<string, string> = {},
  { redis: kind = 'single' }: { redis?: RedisKind } = {},
): Promise<TestEnv> {
  const id = randomBytes(5).toString('hex');
  const databaseName = `parley_t_${id}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(format('CREATE DATABASE %I TEMPLATE %I', databaseName, inject('templateDb')));
  } finally {
    await admin.end();
  }
  const keyPrefix = `t${id}:`;
  const queuePrefix = `{tq${id}}`;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl(databaseName),
    REDIS_URL,
    ...(kind === 'cluster' ? { REDIS_CLUSTER_NODES: inject('redisCluster') } : {}),
    REDIS_KEY_PREFIX: keyPrefix,
    QUEUE_PREFIX: queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    PASSWORD_HASH_COST: '1024',
    PERSIST_BATCH_WAIT_MS: '5',
    PERSIST_BACKOFF_MS: '100',
    // Every test registers, logs in and creates chats from 127.0.0.1: the abuse limits apply to
    // the tests too, so they are set for a test's workload here; the tests of the limits lower them.
    REGISTRATIONS_PER_MIN: '100000',
    LOGINS_PER_MIN: '100000',
    LOGIN_FAILURES_PER_MIN: '1000',
    CHATS_CREATED_PER_MIN: '100000',
    MEMBER_ADDS_PER_MIN: '100000',
    WS_MAX_CONNECTIONS_PER_USER: '200',
    ...overrides,
  };
  const config = loadConfig(env);
  const pool = createPgPool(config, 'parley-test');
  // Cleanup drops the database WITH (FORCE): an idle connection the pool still holds then gets the
  // termination (57P01), which the pool re-emits as its own 'error' (uncaught without a listener),
  // and one whose end is still under way gets it after the pool has let go of it.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const redis: RedisClient = config.REDIS_CLUSTER_NODES
    ? new Cluster(config.REDIS_CLUSTER_NODES.map(parseClusterSeed), { redisOptions: { maxRetriesPerRequest: 3 } })
    : new Redis(config.REDIS_URL, { maxRetriesPerRequest: 3 });
  // A cluster client knows its masters (for SCAN) only once it has read the slots.
  if (redis instanceof Cluster && redis.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('error', reject);
    });
  }

  return {
    env,
    config,
    databaseName,
    pool,
    redis,
    kind,
    async cleanup() {
      await pool.end();
      // The queues with a hash tag of their own (persist shards, webhook receivers) too: `{tqN-…}`.
      for (const pattern of [`${keyPrefix}*`, `${queuePrefix}*`, `${queuePrefix.slice(0, -1)}-*`]) {
        for await (const keys of scanKeys(keyNodes(redis), pattern)) await unlinkKeys(redis, keys);
      }
      redis.disconnect();
      const admin2 = new pg.Client({ connectionString: ADMIN_URL });
      await admin2.connect();
      await admin2.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', databaseName));
      await admin2.end();
    },
  };
}
