import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors.js';
import { bearerToken } from './context.js';
import { secretMatcher } from './secret-match.js';

/**
 * Guards admin routes with the operator's token (`ADMIN_TOKEN`), sent as `Authorization: Bearer`.
 * Without a configured token every admin route answers 403: a deployment that set none has no
 * admin. The comparison is constant-time (secretMatcher).
 */
export function requireAdmin(adminToken: string | undefined): MiddlewareHandler {
  const matches = adminToken ? secretMatcher(adminToken) : null;
  return async (c, next) => {
    if (!matches) throw new AppError('forbidden', 'admin routes are disabled (no ADMIN_TOKEN set)');
    const given = bearerToken(c.req.header('authorization'));
    if (!given || !matches(given)) throw new AppError('unauthorized', 'admin token required');
    await next();
  };
}
