import type { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { AppError } from '../../domain/errors.js';
import type { SystemEvents } from '../../services/system-events.js';
import { requireAdmin } from '../admin-auth.js';
import { readBody } from '../context.js';

export interface AdminRoutesDeps {
  /** config.ADMIN_TOKEN; without one every admin route answers 403. */
  adminToken: string | undefined;
  systemEvents: SystemEvents;
  bodyMaxBytes: number;
}

export const broadcastBody = z.object({
  event: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 letters, digits, _ . : or -'),
  data: z.unknown().optional(),
});

/**
 * POST /api/admin/broadcast `{event, data?}` with `Authorization: Bearer <ADMIN_TOKEN>`: a
 * `system` frame to every connected client on every api process. Mounted on the root app,
 * ahead of /api's user authentication, since it authenticates with the admin token instead.
 * Answers 202 with how many api processes received it.
 */
export function adminRoutes(deps: AdminRoutesDeps) {
  return (app: Hono): void => {
    app.post(
      '/api/admin/broadcast',
      requireAdmin(deps.adminToken),
      bodyLimit({
        maxSize: deps.bodyMaxBytes,
        onError: () => {
          throw new AppError('payload_too_large', `request body over ${deps.bodyMaxBytes} bytes`);
        },
      }),
      async (c) => {
        const { event, data } = await readBody(c, broadcastBody);
        const processes = await deps.systemEvents.broadcast(event, data);
        return c.json({ event, processes }, 202);
      },
    );
  };
}
