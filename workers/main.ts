import { loadConfig, type Config } from '../src/config.js';
import { createPgPool, createRedis } from '../src/infra/clients.js';
import { onShutdownSignal } from '../src/infra/shutdown.js';
import { createLogger, type Logger } from '../src/logger.js';
import { createKeys } from '../src/redis/keys.js';
import { createScripts } from '../src/redis/scripts.js';
import { createMessageStore } from '../src/stores/message-store.js';
import { createPersistWorker } from './persist-worker.js';

/** Runs the workers: config → clients → workers. Returns a function that shuts them down. */
export async function startWorkers(config: Config, logger: Logger): Promise<() => Promise<void>> {
  const pool = createPgPool(config, 'parley-worker');
  const connection = createRedis(config, 'queue', 'parley-worker');
  const redis = createRedis(config, 'queue', 'parley-worker-cmd');
  for (const client of [connection, redis]) {
    client.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
  }
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres pool error'));

  const keys = createKeys(config.REDIS_KEY_PREFIX);
  const persist = createPersistWorker({
    config,
    connection,
    scripts: createScripts(redis),
    keys,
    messages: createMessageStore(pool),
    logger,
  });
  await persist.worker.waitUntilReady();
  console.log('parley worker ready');

  return async () => {
    await persist.close();
    await Promise.all([connection.quit(), redis.quit()].map((p) => p.catch(() => undefined)));
    await pool.end();
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'parley-worker');
  startWorkers(config, logger).then(
    (stop) => onShutdownSignal(logger, stop),
    (err: unknown) => {
      logger.fatal({ err }, 'worker failed to start');
      process.exit(1);
    },
  );
}
