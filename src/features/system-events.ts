import type { SystemEvent } from '../domain/events.js';
import { systemFrame } from '../domain/frames.js';
import { broadcastBody } from '../domain/schemas.js';
import { requireAdmin } from '../http/admin-auth.js';
import { limitBody, readBody } from '../http/context.js';
import type { ConnectionRegistry } from '../realtime/connection-registry.js';
import type { Keys } from '../redis/keys.js';
import type { SystemEvents } from '../services/system-events.js';
import type { Feature } from './feature.js';

export interface SystemEventsDeps {
  systemEvents: SystemEvents;
  registry: Pick<ConnectionRegistry, 'toAll'>;
  keys: Pick<Keys, 'channels'>;
  /** config.ADMIN_TOKEN; without one the broadcast route answers 403. */
  adminToken: string | undefined;
  bodyMaxBytes: number;
}

/**
 * System-wide notices: a `system` frame to every connected client of every api process
 * (`channel:system-events`).
 * - POST /api/admin/broadcast `{event, data?}` with `Authorization: Bearer <ADMIN_TOKEN>`, mounted
 *   on the root app ahead of /api's user authentication since it authenticates with the admin
 *   token instead; answers 202 with how many api processes received it.
 * - `server.shutdown` `{reconnect: true}` to this process's own clients when it goes away (the
 *   others' are unaffected).
 */
export function systemEventsFeature(deps: SystemEventsDeps): Feature {
  const { registry } = deps;
  return {
    name: 'system events',
    routes: {
      root(app) {
        app.post('/api/admin/broadcast', requireAdmin(deps.adminToken), limitBody(deps.bodyMaxBytes), async (c) => {
          const { event, data } = await readBody(c, broadcastBody);
          const processes = await deps.systemEvents.broadcast(event, data);
          return c.json({ event, processes }, 202);
        });
      },
    },
    channels: [
      {
        name: deps.keys.channels.systemEvents,
        scope: 'global',
        handle: (payload) => void registry.toAll(systemFrame(JSON.parse(payload) as SystemEvent)),
      },
    ],
    stopping: () => void registry.toAll(systemFrame({ event: 'server.shutdown', data: { reconnect: true } })),
  };
}
