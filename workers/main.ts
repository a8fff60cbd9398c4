import { assertSupported, ConfigError, loadConfig, type Config } from '../src/config.js';
import type { Message } from '../src/domain/types.js';
import { createPgPool, createRedisClient } from '../src/infra/clients.js';
import {
  onShutdownSignal,
  type ShutdownBudget,
  shutdownBudget,
  shutdownStep,
  whenStarted,
} from '../src/infra/shutdown.js';
import { createLogger, type Logger } from '../src/logger.js';
import { createMessageLog, logSettingsOf } from '../src/message-log/message-log.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { createPersistenceLag } from '../src/metrics/persistence-lag.js';
import { createRuntimeMetrics } from '../src/metrics/runtime-metrics.js';
import { createWorkerMetrics } from '../src/metrics/worker-metrics.js';
import { persistJobOptions, QUEUES, webhookJobOptions } from '../src/queues/definitions.js';
import { closeQueues, openQueues } from '../src/queues/open-queues.js';
import { bullPersistQueue } from '../src/queues/persist-queue.js';
import { keyNodes } from '../src/redis/client.js';
import { createKeys } from '../src/redis/keys.js';
import { createScripts } from '../src/redis/scripts.js';
import { createPresenceState } from '../src/services/presence-state.js';
import { createChatStore } from '../src/stores/chat-store.js';
import { createLastSeenStore } from '../src/stores/last-seen-store.js';
import { createMessageStore } from '../src/stores/message-store.js';
import { createReadStore } from '../src/stores/read-store.js';
import { createSessionStore } from '../src/stores/session-store.js';
import { createWebhookEmitter, webhookEndpoints } from '../src/webhooks/endpoints.js';
import { messageCreated, messageUpdated } from '../src/webhooks/events.js';
import { createOfflineNotifier } from '../src/webhooks/notifications.js';
import { createWebhookStats } from '../src/webhooks/stats.js';
import { createArchiveWorker } from './archive-worker.js';
import { createArchiver } from './archiver.js';
import { startMetricsServer } from './metrics-server.js';
import { createPersistWorker } from './persist-worker.js';
import { createPresenceWorker } from './presence-worker.js';
import { createReceiptsWorker } from './receipts-worker.js';
import { createSessionPurge } from './session-purge.js';
import { createWebhookWorker } from './webhook-worker.js';

/** Stops the workers, each step bounded by `budget` (a fresh one when omitted). */
export type StopWorkers = (budget?: ShutdownBudget) => Promise<void>;

/** Function seams for tests that need a worker to stop at a given point (see persist-worker.ts). */
export interface WorkerSeams {
  afterBatch?: (chatIds: string[]) => Promise<void>;
}

/** Runs the workers: config → clients → workers. Returns a function that shuts them down. */
export async function startWorkers(config: Config, logger: Logger, seams: WorkerSeams = {}): Promise<StopWorkers> {
  assertSupported(config);
  // Every job is in Redis: PostgreSQL-only mode has nothing for a worker to do (sends are in PostgreSQL already).
  if (!config.REDIS_ENABLED)
    throw new ConfigError(['REDIS_ENABLED: the workers need Redis; PostgreSQL-only mode runs the api alone']);
  const pool = createPgPool(config, 'parley-worker');
  const connection = createRedisClient(config, 'queue', 'parley-worker');
  const redis = createRedisClient(config, 'queue', 'parley-worker-cmd');
  for (const client of [connection, redis]) {
    client.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
  }
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres pool error'));

  // Stores, each once, for every worker that needs it.
  const messages = createMessageStore(pool);
  const reads = createReadStore(pool);
  const lastSeen = createLastSeenStore(pool);
  const chats = createChatStore(pool);
  const sessions = createSessionStore(pool);
  // Every queue, on the one queue connection: the workers schedule on theirs, metrics count them all.
  const queues = openQueues(connection, config);
  // The message log on the worker's command connection; hand-on and repair jobs go to the chat's
  // shard of `persist`.
  const log = createMessageLog({
    redis,
    prefix: config.REDIS_KEY_PREFIX,
    queue: bullPersistQueue(queues.sharded.persist, persistJobOptions(config)),
    settings: logSettingsOf(config),
  });
  const keys = createKeys(config.REDIS_KEY_PREFIX);
  const presenceState = createPresenceState({
    redis,
    scripts: createScripts(redis),
    keys,
    ttlMs: config.PRESENCE_TTL_MS,
  });
  const lag = createPersistenceLag({ redis, log, messages });
  // The worker's own metrics registry: queue depths, Redis memory, its pool, lag, batches, archive runs.
  const metrics = createMetrics({
    queues: queues.all,
    redis,
    pool,
    lag,
    lagMaxAgeMs: config.METRICS_LAG_MAX_AGE_MS,
    logger,
  });
  const workerMetrics = createWorkerMetrics(metrics.registry);
  const runtimeMetrics = createRuntimeMetrics(metrics.registry);

  // Webhooks: the persist worker produces the message events once PostgreSQL holds the messages
  // (one addBulk per receiver per batch, nothing on the send path), with the offline notifications
  // of the batch's new messages; the webhook worker delivers every receiver's queue.
  const endpoints = webhookEndpoints(config);
  const emitter = createWebhookEmitter(
    endpoints,
    queues.webhooks,
    webhookJobOptions(config),
    config.WEBHOOK_JOB_MAX_EVENTS,
  );
  const notifier = createOfflineNotifier({
    redis,
    keys,
    audiences: chats.audiences,
    debounceMs: config.NOTIFY_DEBOUNCE_MS,
    previewChars: config.NOTIFY_PREVIEW_CHARS,
  });
  const onWritten = async (created: Message[], updated: Message[]) => {
    const at = new Date();
    await emitter.emit([
      ...created.map((m) => messageCreated(m, at)),
      ...updated.map((m) => messageUpdated(m, at)),
      ...(await notifier.notificationsFor(created)),
    ]);
  };
  const webhooks = createWebhookWorker({
    config,
    endpoints,
    connection,
    stats: createWebhookStats(redis, keys),
    logger,
  });

  // The workers, each on the queue connection; the scheduled ones upsert their schedule once ready.
  const persist = createPersistWorker({
    config,
    connection,
    log,
    insertBatch: messages.insertBatch,
    batchUpdates: { reads, chats },
    updateChanges: messages.updateChanges,
    logger,
    onBatch: workerMetrics.onBatch,
    ...(emitter.enabled ? { onWritten } : {}),
    ...(seams.afterBatch ? { afterBatch: seams.afterBatch } : {}),
  });
  const receipts = createReceiptsWorker({ config, connection, reads, lastSeen, logger });
  const presence = createPresenceWorker({
    config,
    connection,
    queue: queues.single[QUEUES.presence],
    state: presenceState,
    lastSeen,
    chatIdsOf: chats.chatIdsOf,
    logger,
  });
  await presence.schedule();
  await Promise.all([receipts.waitUntilReady(), presence.worker.waitUntilReady()]);
  await persist.waitUntilReady();
  await webhooks.waitUntilReady();
  const archive = createArchiveWorker({
    config,
    connection,
    queue: queues.single[QUEUES.archive],
    logger,
    onRun: workerMetrics.onArchive,
    archiver: createArchiver({ config, log, scanNodes: () => keyNodes(redis), messages, logger }),
  });
  await archive.worker.waitUntilReady();
  await archive.schedule();
  const sessionPurge = createSessionPurge({
    config,
    connection,
    queue: queues.single[QUEUES.sessionPurge],
    sessions,
    logger,
  });
  await sessionPurge.start();
  const metricsServer =
    config.WORKER_METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer({
          host: config.HOST,
          port: config.WORKER_METRICS_PORT,
          render: metrics.render,
          contentType: metrics.contentType,
          logger,
        });
  if (metricsServer) console.log(`parley worker metrics on ${metricsServer.url}/metrics`);
  console.log('parley worker ready');

  return async (budget = shutdownBudget()) => {
    const step = (name: string, capMs: number, run: () => Promise<unknown>, onOverrun?: () => void) =>
      shutdownStep(budget, logger, `workers: ${name}`, capMs, run, onOverrun);
    await step('metrics server', 1000, async () => metricsServer?.close());
    runtimeMetrics.stop();
    // Each stops taking jobs and finishes the batch under way (a job left unfinished is redone
    // by another worker once its lock runs out: every job is safe to redo). Bounded also because
    // BullMQ's close waits for its blocking connection's 'end', which ioredis never emits when that
    // connection is between reconnects (a Redis blip at the wrong moment): it would wait for ever.
    await Promise.all([
      step('persist', 5000, () => persist.close()),
      step('receipts', 5000, () => receipts.close()),
      step('presence', 5000, () => presence.close()),
      step('archive', 5000, () => archive.close()),
      step('session purge', 5000, () => sessionPurge.close()),
      step('webhooks', 5000, () => webhooks.close()),
    ]);
    await step('queues', 1000, () => closeQueues(queues));
    // These connections queue commands while Redis is away: a quit then would wait for ever.
    await step(
      'Redis connections',
      1000,
      () => Promise.all([connection.quit(), redis.quit()].map((p) => p.catch(() => undefined))),
      () => [connection, redis].forEach((c) => c.disconnect()),
    );
    // pool.end waits for every checked-out client: a query that hangs would hold it for ever.
    await step('PostgreSQL pool', 1000, () => pool.end());
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'parley-worker');
  const workers = startWorkers(config, logger);
  // In place before the workers take jobs: a signal during startup stops what has started.
  onShutdownSignal(logger, async (budget) => (await whenStarted(budget, logger, 'workers', workers))?.(budget));
  workers.catch((err: unknown) => {
    logger.fatal({ err }, 'worker failed to start');
    process.exit(1);
  });
}
