import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import type { Logger } from '../../logger.js';
import { basicAuth } from '../basic-auth.js';
import { sameOriginWrites } from '../same-origin.js';

export const BULL_BOARD_PATH = '/admin/queues';

export interface BullBoardDeps {
  /** Every queue (the openQueues map's values), opened with config.QUEUE_PREFIX. */
  queues: readonly Queue[];
  user: string;
  /** With none, the board is not mounted at all. */
  password: string | undefined;
  logger: Logger;
}

/**
 * Bull Board at /admin/queues (through @bull-board/hono, static files by
 * @hono/node-server/serve-static) showing every queue, behind basic auth, and changed only from
 * its own origin. Returns whether it was mounted: without BULL_BOARD_PASSWORD it is not, and the
 * log says so.
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
  const auth = basicAuth(deps.user, deps.password, 'Parley queues');
  // The board adds, retries and removes jobs: only its own pages may ask it to (same-origin.ts).
  const sameOrigin = sameOriginWrites();
  for (const path of [BULL_BOARD_PATH, `${BULL_BOARD_PATH}/*`]) app.use(path, auth, sameOrigin);
  app.route(BULL_BOARD_PATH, serverAdapter.registerPlugin());
  deps.logger.info({ path: BULL_BOARD_PATH, queues: deps.queues.map((q) => q.name) }, 'Bull Board mounted');
  return true;
}
