import { AppError } from '../domain/errors.js';
import { parsePresenceEvent } from '../domain/events.js';
import { userIdSchema } from '../domain/schemas.js';
import { parse } from '../http/context.js';
import type { ConnectionRegistry } from '../realtime/connection-registry.js';
import { createServedOnce } from '../realtime/served-once.js';
import type { PresenceService } from '../services/presence-service.js';
import type { ChatStore } from '../stores/chat-store.js';
import type { Feature } from './feature.js';

export interface PresenceDeps {
  presence: PresenceService;
  chats: Pick<ChatStore, 'relation'>;
  registry: Pick<ConnectionRegistry, 'toMembersOf'>;
  /**
   * Records every connection in Redis (presence, and the per-user count across processes). False
   * in PostgreSQL-only mode: presence lives in Redis, so none is recorded, and the gateway counts
   * connections per user in this process alone.
   */
  recordsConnections: boolean;
}

/**
 * How long, and for how many (transition, user) pairs, this process remembers whom it wrote a
 * presence transition to: its copies on the user's chats are published together and arrive within
 * moments (or, held while the subscriber reconnects, are delivered together), so seconds are
 * plenty; past either bound a late copy is written again (a duplicate frame, never a lost one).
 * Measured: about 260 bytes a pair when each transition reaches one user here, 30 with fifty, so
 * the bound keeps it under about 26 MB.
 */
const SERVED_TTL_MS = 10_000;
const SERVED_MAX_PAIRS = 100_000;

/**
 * Presence: who is online. Each connection is recorded before its upgrade and renewed while open
 * (services/presence-service.ts); online and offline transitions reach every connection that
 * shares a chat with the user, once per connection, and GET /api/users/:userId/presence answers
 * your own, or that of a user who shares a chat with you (the same people who get that user's
 * `presence` frames); anyone else's is 403.
 *
 * A transition is published on each of the user's chats' channels (`s` payloads), so only the
 * processes holding a member of one of them receive it; one that holds members of several gets a
 * copy per chat and writes it to each member once, by its change id (served-once.ts).
 */
export function presenceFeature(deps: PresenceDeps): Feature {
  const { presence, registry } = deps;
  const served = createServedOnce({ ttlMs: SERVED_TTL_MS, maxPairs: SERVED_MAX_PAIRS });
  return {
    name: 'presence',
    routes: {
      api(api) {
        api.get('/users/:userId/presence', async (c) => {
          const userId = parse(userIdSchema, c.req.param('userId'));
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
    chatPayloads: [
      {
        kind: 'presence',
        handle(chatId, rest) {
          const event = parsePresenceEvent(rest);
          if (!event) throw new Error('malformed presence event');
          const { changeId, userId, frame } = event;
          registry.toMembersOf([chatId], frame, userId, (member) => served.first(changeId, member));
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
