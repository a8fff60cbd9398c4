import { createApi } from './api.js';
import { assertSupported, loadConfig, type Config } from './config.js';
import { ensureDatabase, migrate } from './db/migrate.js';
import { createClosedRedis, createPgClient, createPgPool, createRedisClient, type RedisRole } from './infra/clients.js';
import { onShutdownSignal, type ShutdownBudget, shutdownBudget, shutdownStep, whenStarted } from './infra/shutdown.js';
import { createLogger, type Logger } from './logger.js';

export interface RunningApi {
  /** Base URL, e.g. http://127.0.0.1:3000. */
  url: string;
  /** Shuts the api down and ends its clients, each step bounded by `budget` (a fresh one when omitted). */
  stop: (budget?: ShutdownBudget) => Promise<void>;
}

/** Runs one api process: config → clients → api → listen. */
export async function startApi(config: Config, logger: Logger): Promise<RunningApi> {
  assertSupported(config);
  if (config.RUN_MIGRATIONS) await ensureDatabase(config.DATABASE_URL);
  const pool = createPgPool(config, 'parley-api');
  // PostgreSQL-only mode: clients that never connect, so the api is degraded from the start.
  const redisClient = (role: RedisRole, name: string) =>
    config.REDIS_ENABLED ? createRedisClient(config, role, name) : createClosedRedis(role, name);
  const redis = redisClient('command', 'parley-api');
  const subscriber = redisClient('subscriber', 'parley-api');
  // Producers fail fast too: an add must not wait in an offline queue while a client waits for its ack.
  const queueRedis = redisClient('command', 'parley-api-producer');
  for (const [name, client] of Object.entries({ redis, subscriber, queueRedis })) {
    client.on('error', (err: Error) => logger.warn({ client: name, err: err.message }, 'redis connection error'));
  }
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres pool error'));

  if (config.RUN_MIGRATIONS) {
    const applied = await migrate(pool);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  }
  const pgListener = async () => {
    const client = createPgClient(config, 'parley-api-listen');
    await client.connect();
    return client;
  };
  const api = await createApi(config, { redis, subscriber, queueRedis, pool, pgListener }, logger);
  const address = await api.listen();
  const url = `http://${address.address}:${address.port}`;
  // The one line that says where it is (tests and operators wait for it).
  console.log(`parley api listening on ${url}`);

  return {
    url,
    async stop(budget = shutdownBudget()) {
      await api.close(budget);
      const clients = [redis, subscriber, queueRedis];
      // A quit waits for its reply; the subscriber's, queued while Redis is away, would wait for ever.
      await shutdownStep(
        budget,
        logger,
        'api: Redis connections',
        1000,
        () => Promise.all(clients.map((c) => c.quit().catch(() => undefined))),
        () => clients.forEach((c) => c.disconnect()),
      );
      // pool.end waits for every checked-out client: a query that hangs would hold it for ever.
      await shutdownStep(budget, logger, 'api: PostgreSQL pool', 1000, () => pool.end());
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'parley-api');
  const api = startApi(config, logger);
  // In place before the api listens: a signal during startup stops what has started.
  onShutdownSignal(logger, async (budget) => (await whenStarted(budget, logger, 'api', api))?.stop(budget));
  api.catch((err: unknown) => {
    logger.fatal({ err }, 'api failed to start');
    process.exit(1);
  });
}
