import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError, toAppError } from '../domain/errors.js';
import type { Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';
import type { AuthService } from '../services/auth-service.js';
import { type AppEnv, bearerToken } from './context.js';
import { accountRoutes } from './routes/account-routes.js';
import { type ChatRoutesDeps, chatRoutes } from './routes/chat-routes.js';

export interface HttpAppDeps extends ChatRoutesDeps {
  auth: AuthService;
  schemas: Schemas;
  logger: Logger;
  bodyMaxBytes: number;
  /** Answers /readyz: each dependency's state and the mode. */
  readiness: () => Promise<{ redis: boolean; postgres: boolean; mode: 'normal' | 'degraded' }>;
  /** Extra routes mounted before the catch-all (admin, metrics, Bull Board). */
  extend?: (app: Hono) => void;
}

const errorBody = (err: AppError) => ({ error: err.toJSON() });

/** The Hono application: the contract's routes, its error shape, and nothing process-bound. */
export function createHttpApp(deps: HttpAppDeps): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    const appErr = toAppError(err);
    if (appErr.code === 'internal') deps.logger.error({ err, path: c.req.path }, 'unhandled error');
    return c.json(errorBody(appErr), appErr.status as 500);
  });
  app.notFound((c) => c.json(errorBody(new AppError('not_found', 'no such route')), 404));

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const r = await deps.readiness();
    return c.json(r, r.postgres || r.redis ? 200 : 503);
  });
  deps.extend?.(app);

  const api = new Hono<AppEnv>();
  api.use(
    bodyLimit({
      maxSize: deps.bodyMaxBytes,
      onError: () => {
        throw new AppError('payload_too_large', `request body over ${deps.bodyMaxBytes} bytes`);
      },
    }),
  );
  const publicAccount = accountRoutes(deps);
  api.use(async (c, next) => {
    const isPublic = c.req.method === 'POST' && (c.req.path === '/api/users' || c.req.path === '/api/sessions');
    if (!isPublic) c.set('user', await deps.auth.authenticate(bearerToken(c.req.header('authorization'))));
    await next();
  });
  api.route('/', publicAccount);
  api.route('/chats', chatRoutes(deps));
  app.route('/api', api);
  return app;
}
