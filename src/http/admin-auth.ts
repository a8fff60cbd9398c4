import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors.js';
import { bearerToken } from './context.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Guards admin routes with the operator's token (`ADMIN_TOKEN`), sent as `Authorization: Bearer`.
 * Without a configured token every admin route answers 403: a deployment that set none has no
 * admin. Digests are compared in constant time, so neither the token nor its length leaks.
 */
export function requireAdmin(adminToken: string | undefined): MiddlewareHandler {
  const expected = adminToken ? digest(adminToken) : null;
  return async (c, next) => {
    if (!expected) throw new AppError('forbidden', 'admin routes are disabled (no ADMIN_TOKEN set)');
    const given = bearerToken(c.req.header('authorization'));
    if (!given || !timingSafeEqual(digest(given), expected)) throw new AppError('unauthorized', 'admin token required');
    await next();
  };
}
