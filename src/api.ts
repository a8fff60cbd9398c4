import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from './config.js';
import { createSchemas } from './domain/schemas.js';
import { createHttpApp } from './http/app.js';
import type { Logger } from './logger.js';
import { persistJobOptions, QUEUES } from './queues/definitions.js';
import { createConnectionRegistry } from './realtime/connection-registry.js';
import { createFanout } from './realtime/fanout.js';
import { createKeys } from './redis/keys.js';
import { createScripts } from './redis/scripts.js';
import { createAuthService } from './services/auth-service.js';
import { createChatService } from './services/chat-service.js';
import { createHistoryService } from './services/history-service.js';
import { createMembershipService } from './services/membership-service.js';
import { createSendService } from './services/send-service.js';
import { createChatStore } from './stores/chat-store.js';
import { createMessageStore } from './stores/message-store.js';
import { createSessionStore } from './stores/session-store.js';
import { createUserStore } from './stores/user-store.js';
import { createFrameHandler } from './ws/frame-handler.js';
import { createGateway } from './ws/gateway.js';

/** The clients the api runs on; created and ended by the caller (src/main.ts or a test). */
export interface ApiClients {
  /** Fail-fast command connection. */
  redis: Redis;
  /** Dedicated pub/sub subscriber. */
  subscriber: Redis;
  /** Connection for BullMQ producers. */
  queueRedis: Redis;
  pool: Pool;
}

export interface Api {
  server: Server;
  /** Listens on config.HOST:config.PORT; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Stops accepting, closes WebSockets with 1001, and releases what the api created. */
  close(): Promise<void>;
}

/** Wires config and clients into the HTTP + WebSocket server (the api's composition). */
export async function createApi(config: Config, clients: ApiClients, logger: Logger): Promise<Api> {
  const { redis, pool } = clients;
  const keys = createKeys(config.REDIS_KEY_PREFIX);
  const scripts = createScripts(redis);
  const schemas = createSchemas({ messageMaxChars: config.MESSAGE_MAX_CHARS, chatMaxMembers: config.CHAT_MAX_MEMBERS });

  const users = createUserStore(pool);
  const chatStore = createChatStore(pool);
  const messages = createMessageStore(pool);
  const auth = createAuthService({
    users,
    sessions: createSessionStore(pool),
    tokenTtlSeconds: config.TOKEN_TTL_S,
    passwordHashCost: config.PASSWORD_HASH_COST,
  });
  const membership = createMembershipService({ redis, keys, chats: chatStore, ttlSeconds: config.MEMBERSHIP_TTL_S });
  const persistQueue = new Queue(QUEUES.persist, { connection: clients.queueRedis, prefix: config.QUEUE_PREFIX });
  const sender = createSendService({
    scripts,
    keys,
    persistQueue,
    persistJobOptions: persistJobOptions(config),
    membership,
    messages,
    idempotencyTtlSeconds: config.IDEMPOTENCY_TTL_S,
  });
  const history = createHistoryService({ scripts, keys, messages });
  const chats = createChatService({ redis, keys, chats: chatStore, users, messages, membership, maxMembers: config.CHAT_MAX_MEMBERS, logger });

  const readiness = async () => {
    const [r, p] = await Promise.all([
      redis.ping().then(() => true, () => false),
      pool.query('SELECT 1').then(() => true, () => false),
    ]);
    return { redis: r, postgres: p, mode: r ? ('normal' as const) : ('degraded' as const) };
  };

  const app = createHttpApp({ auth, schemas, logger, bodyMaxBytes: config.HTTP_BODY_MAX, chats, membership, sender, history, readiness });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;

  const registry = createConnectionRegistry();
  const fanout = createFanout({ subscriber: clients.subscriber, keys, registry, logger });
  const handleFrame = createFrameHandler({ schemas, sender, history, membership, logger });
  const gateway = createGateway({
    server,
    auth,
    registry,
    handleFrame,
    chatIdsOf: (userId) => chatStore.chatIdsOf(userId),
    logger,
    maxPayload: config.WS_MAX_PAYLOAD,
    heartbeatMs: config.WS_HEARTBEAT_MS,
  });
  await fanout.start();

  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.PORT, config.HOST, () => resolve(server.address() as AddressInfo));
      }),
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.close();
      server.closeAllConnections();
      await stopped;
      await fanout.stop();
      await persistQueue.close();
    },
  };
}
