import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';

/** Probes and scrapes: logged at debug, or they would drown the requests that matter. */
const QUIET = /^\/(healthz|readyz|metrics)$|^\/admin\/queues\/static\//;

/**
 * One JSON line per HTTP request, written once the answer is known: method, path, status and
 * duration. Only these fields, on purpose: the path carries no query string (where a token could
 * sit), and no header or body is ever read here (Authorization, passwords). WebSocket upgrades
 * never reach Hono, so /ws?token= is never seen by this logger.
 */
export function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const line = {
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    const level = status >= 500 ? 'warn' : QUIET.test(c.req.path) ? 'debug' : 'info';
    logger[level](line, 'request');
  };
}
