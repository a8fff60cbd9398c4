import type { Queue } from 'bullmq';
import { idSchema } from '../domain/schemas.js';
import { requireAdmin } from '../http/admin-auth.js';
import { parse } from '../http/context.js';
import { mountBullBoard } from '../http/routes/bull-board.js';
import type { Logger } from '../logger.js';
import type { PersistenceLag } from '../metrics/persistence-lag.js';
import type { EndpointStatus } from '../webhooks/stats.js';
import type { Feature } from './feature.js';

export interface OperatorDeps {
  metrics: { render(): Promise<string>; contentType: string };
  /** The connection gauges (api-metrics.ts), moved as sockets open and close. */
  connections: { onOpen(): void; onClose(): void };
  lag: Pick<PersistenceLag, 'summary' | 'forChat'>;
  queues: readonly Queue[];
  bullBoard: { user: string; password: string | undefined };
  /** Every webhook receiver's delivery counts (GET /admin/webhooks). */
  webhooks: () => Promise<EndpointStatus[]>;
  /** Bearer token of the admin JSON routes; with none they answer 403. */
  adminToken: string | undefined;
  logger: Logger;
}

/**
 * The operator's view: GET /metrics (Prometheus, no auth, as docs/protocol.md says), the
 * persistence-lag JSON behind the admin token (GET /admin/persistence-lag[/:chatId]), the webhook
 * receivers' delivery counts (GET /admin/webhooks, same token), and Bull
 * Board at /admin/queues.
 */
export function operatorFeature(deps: OperatorDeps): Feature {
  return {
    name: 'operator',
    routes: {
      root(app) {
        app.get('/metrics', async (c) =>
          c.body(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType }),
        );
        const admin = requireAdmin(deps.adminToken);
        app.get('/admin/persistence-lag', admin, async (c) => c.json(await deps.lag.summary()));
        app.get('/admin/persistence-lag/:chatId', admin, async (c) =>
          c.json(await deps.lag.forChat(parse(idSchema, c.req.param('chatId')))),
        );
        app.get('/admin/webhooks', admin, async (c) => c.json({ endpoints: await deps.webhooks() }));
        mountBullBoard(app, { queues: deps.queues, ...deps.bullBoard, logger: deps.logger });
      },
    },
    onOpen: () => deps.connections.onOpen(),
    onClose: () => deps.connections.onClose(),
  };
}
