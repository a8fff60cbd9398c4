import { Hono } from 'hono';
import { AppError } from '../../domain/errors.js';
import { idSchema } from '../../domain/schemas.js';
import type { PresenceService } from '../../services/presence-service.js';
import type { ChatStore } from '../../stores/chat-store.js';
import { type AppEnv, parse } from '../context.js';

/**
 * GET /api/users/:userId/presence: your own, or that of a user who shares a chat with you (the
 * same people who get that user's `presence` frames); anyone else's is 403.
 */
export function presenceRoutes(deps: { presence: PresenceService; chats: Pick<ChatStore, 'relation'> }) {
  const app = new Hono<AppEnv>();
  app.get('/:userId/presence', async (c) => {
    const userId = parse(idSchema, c.req.param('userId'));
    const viewer = c.get('user').id;
    if (viewer !== userId) {
      const { exists, sharesChat } = await deps.chats.relation(viewer, userId);
      if (!exists) throw new AppError('not_found', 'no such user');
      if (!sharesChat) throw new AppError('forbidden', 'you share no chat with this user');
    }
    return c.json(await deps.presence.status(userId));
  });
  return app;
}
