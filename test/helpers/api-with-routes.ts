import type { AddressInfo } from 'node:net';
import { createApi } from '../../src/api.js';
import { loadConfig } from '../../src/config.js';
import { createPgClient, createPgPool, createRedisClient } from '../../src/infra/clients.js';
import { createLogger } from '../../src/logger.js';
import { ApiClient } from './http-client.js';
import type { TestEnv } from './test-env.js';

export interface ApiWithRoutes {
  url: string;
  api: ApiClient;
  /** What Hono holds: every route and middleware of the real composition. */
  routes: readonly { method: string; path: string }[];
  stop(): Promise<void>;
}

/** The api's real composition (createApi) on its own clients, listening on a free port. */
export async function startApiWithRoutes(env: TestEnv, overrides: Record<string, string> = {}): Promise<ApiWithRoutes> {
  const config = loadConfig({ ...env.env, ...overrides });
  const pool = createPgPool(config, 'parley-api');
  const redis = createRedisClient(config, 'command', 'parley-api');
  const subscriber = createRedisClient(config, 'subscriber', 'parley-api');
  const queueRedis = createRedisClient(config, 'command', 'parley-api-producer');
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
    routes: api.routes,
    async stop() {
      await api.close();
      await Promise.all([redis, subscriber, queueRedis].map((c) => c.quit().catch(() => undefined)));
      await pool.end();
    },
  };
}
