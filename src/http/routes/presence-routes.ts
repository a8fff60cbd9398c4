import { Hono } from 'hono';
import { idSchema } from '../../domain/schemas.js';
import type { PresenceService } from '../../services/presence-service.js';
import { type AppEnv, parse } from '../context.js';

/** GET /api/users/:userId/presence. */
export function presenceRoutes(deps: { presence: PresenceService }) {
  const app = new Hono<AppEnv>();
  app.get('/:userId/presence', async (c) => c.json(await deps.presence.status(parse(idSchema, c.req.param('userId')))));
  return app;
}
