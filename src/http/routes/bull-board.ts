import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono, MiddlewareHandler } from 'hono';
import type { Logger } from '../../logger.js';

export const BULL_BOARD_PATH = '/admin/queues';

export interface BullBoardDeps {
  /** Every queue (the openQueues map's values), opened with config.QUEUE_PREFIX. */
  queues: readonly Queue[];
  user: string;
  /** With none, the board is not mounted at all. */
  password: string | undefined;
  logger: Logger;
}

/** Constant-time comparison, so the time an answer takes says nothing about the password. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * HTTP basic auth answering in the contract's error shape (hono/basic-auth throws an
 * HTTPException that the app's onError would turn into a 500). The challenge header makes
 * browsers ask for credentials.
 */
function basicAuth(user: string, password: string): MiddlewareHandler {
  return async (c, next) => {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(c.req.header('authorization') ?? '');
    const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon < 0 || !same(decoded.slice(0, colon), user) || !same(decoded.slice(colon + 1), password)) {
      return c.json({ error: { code: 'unauthorized', message: 'Bull Board needs credentials' } }, 401, {
        'www-authenticate': 'Basic realm="Parley queues", charset="UTF-8"',
      });
    }
    await next();
  };
}

/**
 * Bull Board at /admin/queues (through @bull-board/hono, static files by
 * @hono/node-server/serve-static) showing every queue, behind basic auth. Returns whether it was
 * mounted: without BULL_BOARD_PASSWORD it is not, and the log says so.
 */
export function mountBullBoard(app: Hono, deps: BullBoardDeps): boolean {
  if (!deps.password) {
    deps.logger.info('Bull Board not mounted: BULL_BOARD_PASSWORD is not set');
    return false;
  }
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: deps.queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Parley queues' } },
  });
  const auth = basicAuth(deps.user, deps.password);
  app.use(BULL_BOARD_PATH, auth);
  app.use(`${BULL_BOARD_PATH}/*`, auth);
  app.route(BULL_BOARD_PATH, serverAdapter.registerPlugin());
  deps.logger.info({ path: BULL_BOARD_PATH, queues: deps.queues.map((q) => q.name) }, 'Bull Board mounted');
  return true;
}
