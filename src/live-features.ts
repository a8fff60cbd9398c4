import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from './config.js';
import type { Connection } from './domain/connection.js';
import { systemFrame } from './domain/frames.js';
import type { ClientFrame, Schemas } from './domain/schemas.js';
import type { AppEnv } from './http/context.js';
import { adminRoutes } from './http/routes/admin-routes.js';
import { presenceRoutes } from './http/routes/presence-routes.js';
import { receiptRoutes } from './http/routes/receipt-routes.js';
import type { Logger } from './logger.js';
import { receiptJobOptions } from './queues/receipt-jobs.js';
import type { ConnectionRegistry } from './realtime/connection-registry.js';
import { type ChannelSubscriber, registerLiveChannels } from './realtime/live-channels.js';
import type { Keys } from './redis/keys.js';
import type { Scripts } from './redis/scripts.js';
import type { MembershipService } from './services/membership-service.js';
import { createPresenceService } from './services/presence-service.js';
import { createPresenceState } from './services/presence-state.js';
import { createReceiptService } from './services/receipt-service.js';
import { createSystemEvents } from './services/system-events.js';
import { createTypingService } from './services/typing-service.js';
import { createChatStore } from './stores/chat-store.js';
import { createLastSeenStore } from './stores/last-seen-store.js';
import type { MessageStore } from './stores/message-store.js';
import { createReadStore } from './stores/read-store.js';

export interface LiveFeaturesDeps {
  config: Config;
  /** The api's fail-fast command connection. */
  redis: Redis;
  /** The `receipts` queue (opened and closed by the api with the others). */
  receiptsQueue: Queue;
  pool: Pool;
  keys: Keys;
  scripts: Scripts;
  schemas: Schemas;
  membership: MembershipService;
  messages: Pick<MessageStore, 'maxSeq'>;
  chatIdsOf: (userId: string) => Promise<string[]>;
  logger: Logger;
}

type FrameHandlers = Partial<Record<ClientFrame['type'], (conn: Connection, frame: ClientFrame) => Promise<void>>>;

/**
 * Presence, typing, read receipts and system events, composed for the api (issue 3): the api
 * plugs each returned piece into its seam (send hook, chat list, routes, frames, socket hooks,
 * fan-out channels, lifecycle).
 */
export function createLiveFeatures(deps: LiveFeaturesDeps) {
  const { config, redis, keys, scripts, logger } = deps;
  const { receiptsQueue } = deps;
  // Receipts have their own retries and retention (receipt-jobs.ts), not the persist jobs'.
  const jobOptions = receiptJobOptions(config);

  const presence = createPresenceService({
    state: createPresenceState({ redis, scripts, keys, ttlMs: config.PRESENCE_TTL_MS }),
    lastSeen: createLastSeenStore(deps.pool),
    chatIdsOf: deps.chatIdsOf,
    receiptsQueue,
    jobOptions,
    heartbeatMs: Math.max(50, Math.floor(config.PRESENCE_TTL_MS / 3)),
    logger,
  });
  const typing = createTypingService({
    scripts,
    keys,
    membership: deps.membership,
    ttlMs: config.TYPING_TTL_MS,
    throttleMs: config.TYPING_THROTTLE_MS,
  });
  const receipts = createReceiptService({
    redis,
    scripts,
    keys,
    membership: deps.membership,
    reads: createReadStore(deps.pool),
    messages: deps.messages,
    receiptsQueue,
    jobOptions,
    // A chat's read positions live as long as its other keys once idle.
    ttlSeconds: config.ACTIVE_TTL_S,
    logger,
  });
  const systemEvents = createSystemEvents({ redis, keys });

  const frameHandlers: FrameHandlers = {
    typing: async (conn, frame) => {
      if (frame.type === 'typing') await typing.typing(conn.userId, frame.chatId);
    },
    read: async (conn, frame) => {
      if (frame.type === 'read') await receipts.markRead(conn.userId, frame.chatId, frame.seq);
    },
  };

  return {
    /** The chat service's live read positions (unreadCount). */
    readPositions: (userId: string, chatIds: string[]) => receipts.positions(userId, chatIds),
    /** Authenticated routes under /api. */
    routes(api: Hono<AppEnv>): void {
      api.route('/users', presenceRoutes({ presence, chats: createChatStore(deps.pool) }));
      api.route('/chats', receiptRoutes({ receipts, schemas: deps.schemas }));
    },
    /** Routes on the root app (their own authentication). */
    rootRoutes: adminRoutes({ adminToken: config.ADMIN_TOKEN, systemEvents, bodyMaxBytes: config.HTTP_BODY_MAX }),
    frameHandlers,
    /** Records each WebSocket connection in Redis before its upgrade, and counts them per user. */
    admission: { admit: presence.admit, abandon: presence.abandon },
    onOpen: (conn: Connection) => presence.connected(conn),
    onClose: (conn: Connection) => presence.disconnected(conn),
    /** Adds the presence, chat-event and system channels to the fan-out (before it starts). */
    subscribe: (fanout: ChannelSubscriber, registry: ConnectionRegistry) =>
      registerLiveChannels(fanout, keys, registry),
    start: () => presence.start(),
    /** This process is going away: its own clients hear it first (the others' are unaffected). */
    notifyShutdown(registry: ConnectionRegistry): void {
      registry.toAll(systemFrame({ event: 'server.shutdown', data: { reconnect: true } }));
    },
    /** After the sockets closed: lets their offline updates finish (before the queues close). */
    close: () => presence.close(),
  };
}

export type LiveFeatures = ReturnType<typeof createLiveFeatures>;
