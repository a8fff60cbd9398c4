import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors.js';

/**
 * Refuses (403) every request but GET and HEAD whose Origin is missing or is not the server's own.
 * For pages behind basic auth: a browser that holds the credentials sends them with any site's
 * form or `text/plain` fetch, which needs no CORS preflight, so credentials alone do not show
 * that the board's own page sent a request. Browsers put Origin on every such request, the
 * same-origin ones included; its host must be the request's Host (a proxy in front must pass
 * Host through).
 */
export function sameOriginWrites(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !sameHost(c.req.header('origin'), c.req.header('host'))) {
      throw new AppError('forbidden', 'state-changing requests must come from this origin');
    }
    await next();
  };
}

function sameHost(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host) return false;
  try {
    return new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    // `Origin: null` (sandboxed frames, file: pages) and garbage are not this origin.
    return false;
  }
}
