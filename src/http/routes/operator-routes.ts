import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import { idSchema } from '../../domain/schemas.js';
import type { Logger } from '../../logger.js';
import type { PersistenceLag } from '../../metrics/persistence-lag.js';
import { requireAdmin } from '../admin-auth.js';
import { parse } from '../context.js';
import { mountBullBoard } from './bull-board.js';

export interface OperatorRoutesDeps {
  metrics: { render(): Promise<string>; contentType: string };
  lag: PersistenceLag;
  queues: readonly Queue[];
  bullBoard: { user: string; password: string | undefined };
  /** Bearer token of the admin JSON routes; with none they answer 403. */
  adminToken: string | undefined;
  logger: Logger;
}

/**
 * The operator's view, mounted through createHttpApp's `extend`: GET /metrics (Prometheus, no
 * auth, as docs/protocol.md says), the persistence-lag JSON behind the admin token, and Bull Board.
 */
export function operatorRoutes(deps: OperatorRoutesDeps): (app: Hono) => void {
  return (app) => {
    app.get('/metrics', async (c) =>
      c.body(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType }),
    );

    const admin = requireAdmin(deps.adminToken);
    app.get('/admin/persistence-lag', admin, async (c) => c.json(await deps.lag.summary()));
    app.get('/admin/persistence-lag/:chatId', admin, async (c) =>
      c.json(await deps.lag.forChat(parse(idSchema, c.req.param('chatId')))),
    );

    mountBullBoard(app, { queues: deps.queues, ...deps.bullBoard, logger: deps.logger });
  };
}
