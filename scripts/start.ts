/**
 * `npm start`: the whole system on one machine, in one process: migrations, the api/WebSocket
 * server and the workers. (`npm run api` and `npm run worker` run them apart.)
 */
import { loadConfig } from '../src/config.js';
import { onShutdownSignal } from '../src/infra/shutdown.js';
import { createLogger } from '../src/logger.js';
import { startApi } from '../src/main.js';
import { startWorkers } from '../workers/main.js';

const config = loadConfig({ ...process.env, RUN_MIGRATIONS: 'true' });
const logger = createLogger(config.LOG_LEVEL, 'parley');
try {
  const api = await startApi(config, logger);
  const stopWorkers = await startWorkers(config, logger);
  // The api stops first (no new messages), then the workers finish their batch.
  onShutdownSignal(logger, async () => {
    await api.stop();
    await stopWorkers();
  });
} catch (err) {
  logger.fatal({ err }, 'parley failed to start');
  process.exit(1);
}
