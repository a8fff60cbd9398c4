import { createApi } from './api.js';
import { loadConfig, type Config } from './config.js';
import { ensureDatabase, migrate } from './db/migrate.js';
import { createPgClient, createPgPool, createRedis } from './infra/clients.js';
import { onShutdownSignal } from './infra/shutdown.js';
import { createLogger, type Logger } from './logger.js';

export interface RunningApi {
  /** Base URL, e.g. http://127.0.0.1:3000. */
  url: string;
  /** Shuts the api down and ends its clients. */
  stop: () => Promise<void>;
}

/** Runs one api process: config → clients → api → listen. */
export async function startApi(config: Config, logger: Logger): Promise<RunningApi> {
  if (config.RUN_MIGRATIONS) await ensureDatabase(config.DATABASE_URL);
  const pool = createPgPool(config, 'parley-api');
  const redis = createRedis(config, 'command', 'parley-api');
  const subscriber = createRedis(config, 'subscriber', 'parley-api');
  // Producers fail fast too: an add must not wait in an offline queue while a client waits for its ack.
  const queueRedis = createRedis(config, 'command', 'parley-api-producer');
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
    async stop() {
      await api.close();
      await Promise.all([redis.quit(), subscriber.quit(), queueRedis.quit()].map((p) => p.catch(() => undefined)));
      await pool.end();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'parley-api');
  startApi(config, logger).then(
    (api) => onShutdownSignal(logger, api.stop),
    (err: unknown) => {
      logger.fatal({ err }, 'api failed to start');
      process.exit(1);
    },
  );
}
