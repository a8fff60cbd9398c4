import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import type { Pool } from 'pg';
import type { Config } from './config.js';
import { errorText } from './domain/errors.js';
import { createSchemas } from './domain/schemas.js';
import { accountsFeature } from './features/accounts.js';
import { chatsFeature } from './features/chats.js';
import { mountFeatures } from './features/feature.js';
import { operatorFeature } from './features/operator.js';
import { presenceFeature } from './features/presence.js';
import { receiptsFeature } from './features/receipts.js';
import { systemEventsFeature } from './features/system-events.js';
import { typingFeature } from './features/typing.js';
import { createHttpApp } from './http/app.js';
import { defaultWebAppDir } from './http/routes/web-app.js';
import { createHttpServer } from './http/server-limits.js';
import { clusterKeySlot } from './infra/cluster-slot.js';
import { createReadiness } from './infra/readiness.js';
import { RedisCircuit } from './infra/redis-circuit.js';
import { type ShutdownBudget, shutdownBudget, shutdownStep } from './infra/shutdown.js';
import type { Logger } from './logger.js';
import { createMessageLog, logSettingsOf } from './message-log/message-log.js';
import { createApiMetrics } from './metrics/api-metrics.js';
import { createMetrics } from './metrics/metrics.js';
import { createPasswordHashMetrics } from './metrics/password-hash-metrics.js';
import { createPersistenceLag } from './metrics/persistence-lag.js';
import { createRuntimeMetrics } from './metrics/runtime-metrics.js';
import { persistJobOptions, webhookJobOptions } from './queues/definitions.js';
import { closeQueues, openQueues } from './queues/open-queues.js';
import { bullPersistQueue } from './queues/persist-queue.js';
import { receiptJobOptions } from './queues/receipt-jobs.js';
import { createChatSubscriptions } from './realtime/chat-subscriptions.js';
import { createConnectionRegistry } from './realtime/connection-registry.js';
import { createFanout } from './realtime/fanout.js';
import { createPgFanout } from './realtime/pg-fanout.js';
import { duplicateClient, isCluster, pingAll, type RedisClient } from './redis/client.js';
import { createKeys } from './redis/keys.js';
import { createScripts } from './redis/scripts.js';
import { createAuthService } from './services/auth-service.js';
import { createChangeService } from './services/change-service.js';
import { createChatIndex } from './services/chat-index.js';
import { createChatService } from './services/chat-service.js';
import { startDegradedMode } from './services/degraded-mode.js';
import { createHashGate } from './services/hash-gate.js';
import { createHistoryService } from './services/history-service.js';
import { createJwtVerifier, jwtEnabled, jwtSettings } from './services/jwt-verifier.js';
import { createLoginThrottle } from './services/login-throttle.js';
import { createMembershipService } from './services/membership-service.js';
import { createPasswordHasher } from './services/passwords.js';
import { createPresenceService } from './services/presence-service.js';
import { createPresenceState } from './services/presence-state.js';
import { createSendRateLimiter } from './services/rate-limiter.js';
import { createReceiptService } from './services/receipt-service.js';
import { createRecentAcks } from './services/recent-acks.js';
import { createSendService } from './services/send-service.js';
import { createSeqGuard } from './services/seq-guard.js';
import { createSessionRevocation } from './services/session-revocation.js';
import { createSystemEvents } from './services/system-events.js';
import { createTypingService } from './services/typing-service.js';
import { abuseRules, createWindowLimiter } from './services/window-limiter.js';
import { createChatStore } from './stores/chat-store.js';
import { createDirectMessageStore } from './stores/direct-message-store.js';
import { createLastSeenStore } from './stores/last-seen-store.js';
import { createMessageStore } from './stores/message-store.js';
import { createReadStore } from './stores/read-store.js';
import { createSessionStore } from './stores/session-store.js';
import { createUserStore } from './stores/user-store.js';
import { createWebhookEmitter, webhookEndpoints } from './webhooks/endpoints.js';
import { memberEvents } from './webhooks/events.js';
import { createWebhookStats } from './webhooks/stats.js';
import { createFrameHandler } from './ws/frame-handler.js';
import { createGateway } from './ws/gateway.js';

/** The clients the api runs on; created and ended by the caller (src/main.ts or a test). */
export interface ApiClients {
  /** Fail-fast command connection. */
  redis: RedisClient;
  /** Dedicated pub/sub subscriber. */
  subscriber: RedisClient;
  /** Connection for BullMQ producers. */
  queueRedis: RedisClient;
  pool: Pool;
  /** Opens a dedicated PostgreSQL connection for LISTEN (degraded-mode fan-out). */
  pgListener: () => Promise<pg.Client>;
}

export interface Api {
  server: Server;
  /** The HTTP routes and middleware Hono holds, as it lists them (the OpenAPI test compares). */
  routes: readonly { method: string; path: string }[];
  /** Listens on config.HOST:config.PORT; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /**
   * Stops accepting, closes WebSockets with 1001, and releases what the api created, each step
   * bounded by `budget` (a fresh one when omitted); steps left behind are recorded in it.
   */
  close(budget?: ShutdownBudget): Promise<void>;
}

/**
 * The api's composition: config and clients (src/main.ts) → stores → the message log and the
 * queues → services → features → transports, each built once, in that order.
 */
export async function createApi(config: Config, clients: ApiClients, logger: Logger): Promise<Api> {
  const { redis, pool } = clients;
  const schemas = createSchemas({
    messageMaxChars: config.MESSAGE_MAX_CHARS,
    chatMaxMembers: config.CHAT_MAX_MEMBERS,
    syncMaxChats: config.SYNC_MAX_CHATS,
  });

  // Stores: one module per table.
  const users = createUserStore(pool);
  const sessions = createSessionStore(pool);
  const chatStore = createChatStore(pool);
  const messages = createMessageStore(pool);
  const direct = createDirectMessageStore(pool, config.DEGRADED_SEQ_GAP);
  const reads = createReadStore(pool);
  const lastSeen = createLastSeenStore(pool);

  // Redis: keys, scripts, the circuit that decides between Redis and PostgreSQL alone (degraded
  // mode, services/degraded-mode.ts), every queue (Bull Board and queue metrics show them all; the
  // api produces into `persist` and `receipts`, each a queue per shard by chat), and the message log on the fail-fast connection.
  const keys = createKeys(config.REDIS_KEY_PREFIX);
  const scripts = createScripts(redis);
  const circuit = new RedisCircuit({
    redis,
    logger,
    probeMs: config.REDIS_PROBE_MS,
    failureThreshold: config.REDIS_FAILURE_THRESHOLD,
    withoutRedis: !config.REDIS_ENABLED,
  });
  const queues = openQueues(clients.queueRedis, config);
  // PostgreSQL-only mode: each queue reports its closed connection once; nothing is ever queued.
  if (!config.REDIS_ENABLED) queues.all.forEach((q) => q.on('error', () => undefined));
  const log = createMessageLog({
    redis,
    prefix: config.REDIS_KEY_PREFIX,
    queue: bullPersistQueue(queues.sharded.persist, persistJobOptions(config)),
    settings: logSettingsOf(config),
  });
  // Receipts have their own retries and retention (receipt-jobs.ts), not the persist jobs'.
  const receiptJobs = { receiptsQueues: queues.sharded.receipts, jobOptions: receiptJobOptions(config) };

  const lag = createPersistenceLag({ redis, log, messages });
  const metrics = createMetrics({
    queues: queues.all,
    redis,
    pool,
    lag,
    lagMaxAgeMs: config.METRICS_LAG_MAX_AGE_MS,
    logger,
  });
  const apiMetrics = createApiMetrics(metrics.registry);
  const runtimeMetrics = createRuntimeMetrics(metrics.registry);

  // Services. Logins and registrations: limited per address and username (across processes,
  // through Redis), hashing bounded per process.
  const hashGate = createHashGate({
    concurrency: config.PASSWORD_HASH_CONCURRENCY,
    queueMax: config.PASSWORD_HASH_QUEUE_MAX,
  });
  createPasswordHashMetrics(metrics.registry, hashGate.stats);
  const windowLimiter = createWindowLimiter({ scripts, keys, redisDown: () => circuit.isOpen });
  const auth = createAuthService({
    users,
    sessions,
    tokenTtlSeconds: config.TOKEN_TTL_S,
    passwords: createPasswordHasher({ cost: config.PASSWORD_HASH_COST, gate: hashGate }),
    throttle: createLoginThrottle({ limiter: windowLimiter, rules: abuseRules(config) }),
    jwt: jwtEnabled(jwtSettings(config)) ? createJwtVerifier(jwtSettings(config)) : undefined,
  });
  const revocation = createSessionRevocation({ redis, keys, auth, logger });
  // Which chats a user is in: PostgreSQL, with a Redis copy for connecting while PostgreSQL is down.
  const chatIndex = createChatIndex({ chats: chatStore, redis, scripts, keys, ttlSeconds: config.MEMBERSHIP_TTL_S });
  const membership = createMembershipService({
    redis,
    keys,
    scripts,
    chats: chatStore,
    userChats: chatIndex,
    ttlSeconds: config.MEMBERSHIP_TTL_S,
  });
  // What this process acked lately, for PostgreSQL should Redis lose its data before a worker wrote it.
  const recentAcks = createRecentAcks({
    retentionMs: config.RECENT_ACKS_MS,
    max: config.RECENT_ACKS_MAX,
    insertBatch: messages.insertBatch,
    updateChanges: messages.updateChanges,
    logger,
  });
  // As Redis becomes unreachable, what this process acked through it goes to PostgreSQL at once:
  // history and changes in degraded mode then start from every acked state, not an older one.
  circuit.onModeChange((mode) => {
    if (mode !== 'degraded') return;
    recentAcks
      .replay('redis unreachable')
      .catch((err: unknown) => logger.warn({ err: errorText(err) }, 'recent acks not written to postgres'));
  });
  const seqGuard = createSeqGuard({
    redis,
    keys,
    log,
    direct,
    seqGap: config.DEGRADED_SEQ_GAP,
    logger,
    onDataLoss: async () => void (await recentAcks.replay()),
  });
  // Sends and changes to messages take tokens from the same per-user bucket.
  const rateLimit = createSendRateLimiter({
    // One Redis: the append (or change) script takes the sender's token in its own round trip. On
    // a cluster the sender's bucket is in the user's slot, not the chat's: a script of its own.
    inAppend: !isCluster(redis),
    scripts,
    keys,
    limits: { capacity: config.SEND_RATE_BURST, perSecond: config.SEND_RATE_PER_S },
    redisDown: () => circuit.isOpen,
  });
  const sender = createSendService({
    log,
    membership,
    circuit,
    direct,
    seqGuard,
    findSent: messages.findByClientMsgId,
    onAccepted: (accepted, startedAt) => {
      recentAcks.add(accepted.json);
      apiMetrics.onAccepted(accepted, startedAt);
    },
    onStage: apiMetrics.onSendStage,
    rateLimit,
  });
  const changer = createChangeService({
    log,
    membership,
    circuit,
    direct,
    seqGuard,
    rateLimit,
    storedMessage: messages.get,
    creatorOf: async (chatId) => (await chatStore.find(chatId))?.createdBy ?? null,
    onAccepted: (accepted) => recentAcks.add(accepted.json),
  });
  const history = createHistoryService({ log, messages });
  const receipts = createReceiptService({
    redis,
    scripts,
    keys,
    membership,
    reads,
    messages,
    ...receiptJobs,
    // A chat's read positions live as long as its other keys once idle.
    ttlSeconds: config.ACTIVE_TTL_S,
    logger,
  });
  // Webhooks: the api produces the membership events (rare, one addBulk per receiver per change);
  // the message events come from the persist worker (workers/main.ts).
  const endpoints = webhookEndpoints(config);
  const webhooks = createWebhookEmitter(
    endpoints,
    queues.webhooks,
    webhookJobOptions(config),
    config.WEBHOOK_JOB_MAX_EVENTS,
  );
  const webhookStats = createWebhookStats(redis, keys);
  const chats = createChatService({
    log,
    chats: chatStore,
    users,
    messages,
    // PostgreSQL-only mode: no Redis cache or other process to tell of a membership change.
    membership: config.REDIS_ENABLED ? membership : { ...membership, changed: async () => {} },
    maxMembers: config.CHAT_MAX_MEMBERS,
    maxChatsPerUser: config.CHATS_PER_USER_MAX,
    // Chats created and members added per user, counted in Redis across processes.
    limiter: windowLimiter,
    rules: abuseRules(config),
    logger,
    readPositions: receipts.positions,
    ...(webhooks.enabled && config.REDIS_ENABLED
      ? { onMembershipChanged: (change) => webhooks.emit(memberEvents(change, randomUUID())) }
      : {}),
  });
  const presence = createPresenceService({
    state: createPresenceState({ redis, scripts, keys, ttlMs: config.PRESENCE_TTL_MS }),
    lastSeen,
    chatIdsOf: chatIndex.chatIdsOf,
    ...receiptJobs,
    heartbeatMs: Math.max(50, Math.floor(config.PRESENCE_TTL_MS / 3)),
    logger,
  });
  const typing = createTypingService({
    scripts,
    keys,
    membership,
    ttlMs: config.TYPING_TTL_MS,
    throttleMs: config.TYPING_THROTTLE_MS,
  });
  const systemEvents = createSystemEvents({ redis, keys });
  // Redis is up when every node holding keys answers (each master of a cluster).
  const readiness = createReadiness({ redis: { ping: () => pingAll(redis) }, pool, degraded: () => circuit.isOpen });
  await startDegradedMode({
    redis,
    circuit,
    seqGuard,
    membership,
    redisEnabled: config.REDIS_ENABLED,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT,
    logger,
  });

  // Features: what each serves over HTTP and WebSocket, mounted together below.
  // A chat's channel is subscribed while one of its members is connected here.
  // Its own connection (fanout.ts says why), made from the subscriber's options and ended with the api.
  const chatSubscriber = duplicateClient(clients.subscriber, 'chats');
  chatSubscriber.on('error', () => undefined);
  const chatSubscriptions = createChatSubscriptions({
    subscriber: chatSubscriber,
    channelOf: keys.channels.chat,
    // One (S)SUBSCRIBE per slot on a cluster (see chat-subscriptions.ts).
    ...(isCluster(chatSubscriber) ? { groupOf: clusterKeySlot } : {}),
    logger,
  });
  const registry = createConnectionRegistry(chatSubscriptions);
  const features = mountFeatures([
    operatorFeature({
      metrics,
      connections: apiMetrics,
      lag,
      queues: queues.all,
      bullBoard: { user: config.BULL_BOARD_USER, password: config.BULL_BOARD_PASSWORD },
      adminToken: config.ADMIN_TOKEN,
      webhooks: () => webhookStats.status(endpoints, queues.webhooks),
      logger,
    }),
    systemEventsFeature({
      systemEvents,
      registry,
      keys,
      adminToken: config.ADMIN_TOKEN,
      bodyMaxBytes: config.HTTP_BODY_MAX,
    }),
    accountsFeature({ auth, revocation, schemas, keys, trustProxy: config.TRUST_PROXY }),
    chatsFeature({
      schemas,
      chats,
      membership,
      sender,
      changer,
      history,
      accessOf: chatStore.accessOf,
      onAckWritten: (ms) => apiMetrics.onSendStage('ack_written', ms),
    }),
    presenceFeature({ presence, chats: chatStore, registry, recordsConnections: config.REDIS_ENABLED }),
    receiptsFeature({ receipts, schemas }),
    typingFeature({ typing }),
  ]);

  // Transports: HTTP, the WebSocket gateway, and the fan-out to the sockets it holds.
  const app = createHttpApp({
    auth,
    schemas,
    logger,
    bodyMaxBytes: config.HTTP_BODY_MAX,
    readiness,
    routes: features.routes,
    webAppDir: config.WEB_APP ? defaultWebAppDir() : null,
  });
  const server = createHttpServer({
    fetch: app.fetch,
    limits: {
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: config.HTTP_KEEPALIVE_TIMEOUT_MS,
      maxConnections: config.HTTP_MAX_CONNECTIONS,
    },
    logger,
  });
  const gateway = createGateway({
    server,
    auth,
    registry,
    handleFrame: createFrameHandler({ schemas, handlers: features.frames, logger }),
    chatIdsOf: chatIndex.chatIdsOf,
    logger,
    maxPayload: config.WS_MAX_PAYLOAD,
    heartbeatMs: config.WS_HEARTBEAT_MS,
    limits: { maxConnections: config.WS_MAX_CONNECTIONS, maxPerUser: config.WS_MAX_CONNECTIONS_PER_USER },
    admission: features.admission,
    onOpen: features.onOpen,
    onClose: features.onClose,
    backpressure: {
      softBytes: config.WS_SEND_BUFFER_SOFT,
      maxBytes: Math.max(config.WS_SEND_BUFFER_MAX, config.WS_SEND_BUFFER_SOFT),
    },
    frameLimits: {
      frames: { capacity: config.WS_FRAME_BURST, perSecond: config.WS_FRAME_RATE_PER_S },
      floodMaxRefused: config.WS_FLOOD_MAX_REFUSED,
      floodWindowMs: config.WS_FLOOD_WINDOW_MS,
    },
  });
  // Logout anywhere closes this process's sockets of that session (and empties its auth cache).
  revocation.onEnded((tokenHash) => gateway.endSession(tokenHash));
  const fanout = createFanout({
    subscriber: clients.subscriber,
    chatSubscriber,
    keys,
    registry,
    subscriptions: chatSubscriptions,
    messagesAfter: async (chatId, seq, count) => (await log.history(chatId, 'after', seq, count)).jsons,
    chatIdsOfUsers: chatStore.chatIdsOfUsers,
    channels: features.channels,
    chatPayloads: features.chatPayloads,
    logger,
    onDelivered: apiMetrics.onDelivered,
    onReceived: apiMetrics.onReceived,
  });
  const pgFanout = createPgFanout({
    connect: clients.pgListener,
    registry,
    messages,
    memberIds: chatStore.memberIds,
    logger,
    retryMs: 1000,
  });
  // Without Redis there is nothing to subscribe to: LISTEN/NOTIFY carries the chats.
  if (config.REDIS_ENABLED) await fanout.start();
  await pgFanout.start();
  features.start();

  return {
    server,
    routes: app.routes.map(({ method, path }) => ({ method, path })),
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.PORT, config.HOST, () => resolve(server.address() as AddressInfo));
      }),
    async close(budget = shutdownBudget()) {
      const step = (name: string, capMs: number, run: () => Promise<unknown>) =>
        shutdownStep(budget, logger, `api: ${name}`, capMs, run);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // This process's own clients hear it is going away first (the others' are unaffected).
      features.stopping();
      // Each socket gets the closing handshake (1001); one that does not answer is cut at 2 s.
      await step('close WebSockets', 2500, () => gateway.close());
      // What the sockets' closes started (their offline updates) needs Redis and the receipts
      // queue, which close below. One left unfinished is not lost: the connection expires and the
      // presence sweep publishes it.
      await Promise.all(features.stops.map(({ name, stop }) => step(name, 1500, stop)));
      server.closeAllConnections();
      await step('HTTP server', 1000, () => stopped);
      circuit.stop();
      await step('Redis fan-out', 1000, () => fanout.stop());
      chatSubscriber.disconnect();
      await step('PostgreSQL fan-out', 1000, () => pgFanout.stop());
      await step('queues', 1000, () => closeQueues(queues));
      runtimeMetrics.stop();
    },
  };
}
