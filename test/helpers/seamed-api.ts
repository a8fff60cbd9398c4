import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { createApi } from '../../src/api.js';
import { loadConfig } from '../../src/config.js';
import { createPgClient, createPgPool, createRedisClient } from '../../src/infra/clients.js';
import { createLogger } from '../../src/logger.js';
import { ApiClient } from './http-client.js';
import type { TestEnv } from './test-env.js';

/** Called after PostgreSQL answered each query of the api's pool; may hold the answer back or throw. */
export type QueryHook = (text: string, params: unknown[]) => Promise<void> | void;

export interface SeamedApi {
  url: string;
  api: ApiClient;
  /** Queries the api's pool has run so far. */
  queries(): number;
  /** Sets (or, with null, clears) the hook on the pool's answers. */
  hook(fn: QueryHook | null): void;
  /** The CLIENT ID of the api's pub/sub connection as it first connected (to CLIENT KILL it). */
  subscriberId: string;
  stop(): Promise<void>;
}

/**
 * The api's real composition (createApi) on clients this helper creates, with a seam on the pool:
 * every query still runs on the test's PostgreSQL, and the test may count them or hold an answer
 * back. The subscriber's connection id tells it apart from every other on the shared Redis.
 */
export async function startSeamedApi(env: TestEnv, overrides: Record<string, string> = {}): Promise<SeamedApi> {
  const config = loadConfig({ ...env.env, ...overrides });
  const pool = createPgPool(config, 'parley-api');
  // As the real composition root does: an idle client's error (the test's database dropped at
  // cleanup) is the pool's to report, not an uncaught exception.
  pool.on('error', () => undefined);
  let hook: QueryHook | null = null;
  let queries = 0;
  const query = pool.query.bind(pool) as (text: string, params?: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: unknown }).query = async (text: string, params: unknown[] = []) => {
    queries++;
    const result = await query(text, params);
    await hook?.(text, params);
    return result;
  };
  const redis = createRedisClient(config, 'command', 'parley-api');
  const subscriber = createRedisClient(config, 'subscriber', 'parley-api');
  const queueRedis = createRedisClient(config, 'command', 'parley-api-producer');
  const subscriberId = String(await subscriber.client('ID'));
  const pgListener = async () => {
    const c = createPgClient(config, 'parley-api-listen');
    await c.connect();
    return c;
  };
  const api = await createApi(
    config,
    { redis, subscriber, queueRedis, pool, pgListener },
    createLogger(config.LOG_LEVEL, 'test'),
  );
  const { port } = (await api.listen()) as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    api: new ApiClient(url),
    queries: () => queries,
    hook: (fn) => void (hook = fn),
    subscriberId,
    async stop() {
      await api.close();
      await Promise.all([redis, subscriber, queueRedis].map((c) => c.quit().catch(() => undefined)));
      await pool.end();
    },
  };
}
