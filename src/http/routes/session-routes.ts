import { Hono } from 'hono';
import { AppError } from '../../domain/errors.js';
import type { SessionRevocation } from '../../services/session-revocation.js';
import { type AppEnv, bearerToken } from '../context.js';

/**
 * Logout, effective on every api process at once; the sockets opened with an ended session close
 * with 4001 (sessionEnded). Authentication has run before these routes (the /api middleware), so
 * the token and `user` are valid here.
 * - DELETE /api/sessions/current: the token that authenticated the request.
 * - DELETE /api/sessions: every session of its user (log out everywhere, e.g. after a lost device).
 */
export function sessionRoutes(deps: { revocation: SessionRevocation }) {
  const app = new Hono<AppEnv>();

  app.delete('/sessions/current', async (c) => {
    const token = bearerToken(c.req.header('authorization'));
    if (!token) throw new AppError('unauthorized', 'missing or invalid token');
    await deps.revocation.revoke(token);
    return c.body(null, 204);
  });

  app.delete('/sessions', async (c) => {
    await deps.revocation.revokeAll(c.get('user').id);
    return c.body(null, 204);
  });

  return app;
}
