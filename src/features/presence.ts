import { AppError } from '../domain/errors.js';
import type { PresenceChange } from '../domain/events.js';
import { presenceFrame } from '../domain/frames.js';
import { idSchema } from '../domain/schemas.js';
import { parse } from '../http/context.js';
import type { ConnectionRegistry } from '../realtime/connection-registry.js';
import type { Keys } from '../redis/keys.js';
import type { PresenceService } from '../services/presence-service.js';
import type { ChatStore } from '../stores/chat-store.js';
import type { Feature } from './feature.js';

export interface PresenceDeps {
  presence: PresenceService;
  chats: Pick<ChatStore, 'relation'>;
  registry: Pick<ConnectionRegistry, 'toMembersOf'>;
  keys: Pick<Keys, 'channels'>;
  /**
   * Records every connection in Redis (presence, and the per-user count across processes). False
   * in PostgreSQL-only mode: presence lives in Redis, so none is recorded, and the gateway counts
   * connections per user in this process alone.
   */
  recordsConnections: boolean;
}

/**
 * Presence: who is online. Each connection is recorded before its upgrade and renewed while open
 * (services/presence-service.ts); online and offline transitions reach every connection that
 * shares a chat with the user, once per connection (`channel:user-presence`), and
 * GET /api/users/:userId/presence answers your own, or that of a user who shares a chat with you
 * (the same people who get that user's `presence` frames); anyone else's is 403.
 */
export function presenceFeature(deps: PresenceDeps): Feature {
  const { presence, registry } = deps;
  return {
    name: 'presence',
    routes: {
      api(api) {
        api.get('/users/:userId/presence', async (c) => {
          const userId = parse(idSchema, c.req.param('userId'));
          const viewer = c.get('user').id;
          if (viewer !== userId) {
            const { exists, sharesChat } = await deps.chats.relation(viewer, userId);
            if (!exists) throw new AppError('not_found', 'no such user');
            if (!sharesChat) throw new AppError('forbidden', 'you share no chat with this user');
          }
          return c.json(await presence.status(userId));
        });
      },
    },
    channels: [
      {
        name: deps.keys.channels.userPresence,
        handle(payload) {
          const change = JSON.parse(payload) as PresenceChange;
          registry.toMembersOf(change.chatIds, presenceFrame(change), change.userId);
        },
      },
    ],
    ...(deps.recordsConnections
      ? {
          admission: { admit: presence.admit, abandon: presence.abandon },
          onOpen: (conn) => presence.connected(conn),
          onClose: (conn) => presence.disconnected(conn),
          start: () => presence.start(),
        }
      : {}),
    /** After the sockets closed: lets their offline updates finish (before the queues close). */
    stop: () => presence.close(),
  };
}
