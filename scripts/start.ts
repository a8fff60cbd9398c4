/**
 * `npm start`: the whole system on one machine, in one process: migrations, the api/WebSocket
 * server and the workers. (`npm run api` and `npm run worker` run them apart.) With DATABASE_URL
 * unset it runs an embedded PostgreSQL, with REDIS_URL unset a redis-server of its own (or none:
 * PostgreSQL-only mode), their data in PARLEY_DATA_DIR (scripts/embedded/servers.ts).
 */
import { assertSupported, embeddedServers, loadConfig } from '../src/config.js';
import { onShutdownSignal, type ShutdownBudget, shutdownBudget, whenStarted } from '../src/infra/shutdown.js';
import { createLogger } from '../src/logger.js';
import { startApi } from '../src/main.js';
import { startWorkers } from '../workers/main.js';
import { SERVERS_STOP_MS, startServers } from './embedded/servers.js';

const base = loadConfig({ ...process.env, RUN_MIGRATIONS: 'true' });
const logger = createLogger(base.LOG_LEVEL, 'parley');
try {
  // Before any server starts: a setting the api would refuse must not cost an initdb first.
  assertSupported(base);
} catch (err) {
  logger.fatal({ err }, 'parley failed to start');
  process.exit(1);
}
const servers = startServers(base, embeddedServers(base), logger);
const config = servers.ready.then(({ env, summary }) => {
  summary.forEach((line) => console.log(line));
  return loadConfig({ ...process.env, RUN_MIGRATIONS: 'true', ...env });
});
let stopping = false;
const api = config.then((c) => startApi(c, logger));
// PostgreSQL-only mode has no workers: every job is in Redis, and every send already in PostgreSQL.
const workers = Promise.all([config, api]).then(([c]) => (c.REDIS_ENABLED ? startWorkers(c, logger) : async () => {}));

/** The part of a stop's budget left to the api and the workers: the servers stop last, in what remains. */
const before = (budget: ShutdownBudget): ShutdownBudget =>
  servers.any ? { deadline: budget.deadline - SERVERS_STOP_MS, problems: budget.problems } : budget;

// In place before anything listens: a signal during startup stops what has started, cleanly.
onShutdownSignal(logger, async (budget) => {
  stopping = true;
  // While the servers are still starting nothing else can be: they are all there is to stop.
  if (servers.isReady()) {
    // The api stops first (no new messages), then the workers finish their batch.
    await (await whenStarted(before(budget), logger, 'api', api))?.stop(before(budget));
    await (
      await whenStarted(before(budget), logger, 'workers', workers)
    )?.(before(budget));
  }
  await servers.stop(budget);
});
workers.catch(async (err: unknown) => {
  // A stop under way (a signal during startup) ends the process itself.
  if (stopping) return;
  stopping = true;
  logger.fatal({ err }, 'parley failed to start');
  // The servers this start ran do not outlive it.
  await servers.stop(shutdownBudget());
  process.exit(1);
});
