/**
 * `npm start`: the whole system on one machine, in one process: migrations, the api/WebSocket
 * server and the workers. (`npm run api` and `npm run worker` run them apart.)
 */
import { loadConfig } from '../src/config.js';
import { onShutdownSignal, whenStarted } from '../src/infra/shutdown.js';
import { createLogger } from '../src/logger.js';
import { startApi } from '../src/main.js';
import { startWorkers } from '../workers/main.js';

const config = loadConfig({ ...process.env, RUN_MIGRATIONS: 'true' });
const logger = createLogger(config.LOG_LEVEL, 'parley');
const api = startApi(config, logger);
const workers = api.then(() => startWorkers(config, logger));
// In place before anything listens: a signal during startup stops what has started, cleanly.
onShutdownSignal(logger, async (budget) => {
  // The api stops first (no new messages), then the workers finish their batch.
  await (await whenStarted(budget, logger, 'api', api))?.stop(budget);
  await (await whenStarted(budget, logger, 'workers', workers))?.(budget);
});
workers.catch((err: unknown) => {
  logger.fatal({ err }, 'parley failed to start');
  process.exit(1);
});
