import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { AppError, toAppError } from '../domain/errors.js';
import type { Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';
import type { AuthService } from '../services/auth-service.js';
import type { SessionRevocation } from '../services/session-revocation.js';
import { type AppEnv, bearerToken } from './context.js';
import { requestLog } from './request-log.js';
import { accountRoutes } from './routes/account-routes.js';
import { type ChatRoutesDeps, chatRoutes } from './routes/chat-routes.js';
import { docsRoutes } from './routes/docs-routes.js';
import { sessionRoutes } from './routes/session-routes.js';

export interface HttpAppDeps extends ChatRoutesDeps {
  auth: AuthService;
  schemas: Schemas;
  logger: Logger;
  bodyMaxBytes: number;
  /** Take the client address (login and registration limits) from X-Forwarded-For (TRUST_PROXY). */
  trustProxy: boolean;
  /** Logout (DELETE /api/sessions/current). */
  revocation: SessionRevocation;
  /** Answers /readyz: each dependency's state and the mode. */
  readiness: () => Promise<{ redis: boolean; postgres: boolean; mode: 'normal' | 'degraded' }>;
  /** Extra routes mounted before the catch-all (admin, metrics, Bull Board). */
  extend?: (app: Hono) => void;
  /** Extra authenticated routes under /api (presence, read receipts). */
  extendApi?: (api: Hono<AppEnv>) => void;
}

const errorBody = (err: AppError) => ({ error: err.toJSON() });

/** The Hono application: the contract's routes, its error shape, and nothing process-bound. */
export function createHttpApp(deps: HttpAppDeps): Hono {
  const app = new Hono();

  // First, so that it sees every answer's final status (onError's included) and times it all.
  app.use(requestLog(deps.logger));
  // On every answer, errors included (the middleware sets them after the handler or onError ran).
  app.use(secureHeaders());
  app.onError((err, c) => {
    const appErr = toAppError(err);
    if (appErr.code === 'internal') deps.logger.error({ err, path: c.req.path }, 'unhandled error');
    const retryAfterMs = appErr.details?.retryAfterMs;
    if (typeof retryAfterMs === 'number') c.header('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
    return c.json(errorBody(appErr), appErr.status as 500);
  });
  app.notFound((c) => c.json(errorBody(new AppError('not_found', 'no such route')), 404));

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const r = await deps.readiness();
    return c.json(r, r.postgres || r.redis ? 200 : 503);
  });
  docsRoutes({ schemas: deps.schemas })(app);
  deps.extend?.(app);

  const api = new Hono<AppEnv>();
  // Answers carry tokens and private messages: no cache may keep them.
  api.use(async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
  });
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
  api.route('/', sessionRoutes(deps));
  api.route('/chats', chatRoutes(deps));
  deps.extendApi?.(api);
  app.route('/api', api);
  return app;
}
