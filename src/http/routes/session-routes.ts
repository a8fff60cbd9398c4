import { Hono } from 'hono';
import { AppError } from '../../domain/errors.js';
import type { SessionRevocation } from '../../services/session-revocation.js';
import { type AppEnv, bearerToken } from '../context.js';

/**
 * DELETE /api/sessions/current: logout. The token that authenticated the request stops working
 * on every api process at once, and the sockets opened with it close with 4001 (sessionEnded).
 * Authentication has run before this route (the /api middleware), so the token is valid here.
 */
export function sessionRoutes(deps: { revocation: SessionRevocation }) {
  const app = new Hono<AppEnv>();

  app.delete('/sessions/current', async (c) => {
    const token = bearerToken(c.req.header('authorization'));
    if (!token) throw new AppError('unauthorized', 'missing or invalid token');
    await deps.revocation.revoke(token);
    return c.body(null, 204);
  });

  return app;
}
