import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { AppError, toAppError } from '../domain/errors.js';
import type { Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';
import type { AuthService } from '../services/auth-service.js';
import { type AppEnv, bearerToken, limitBody } from './context.js';
import { requestLog } from './request-log.js';
import { docsRoutes } from './routes/docs-routes.js';
import { webAppRoutes } from './routes/web-app.js';

/** The routes one feature serves (src/features/), by how they are authenticated. */
export interface HttpRoutes {
  /** On the root app, ahead of /api's authentication: they authenticate their own way (admin, metrics). */
  root?(app: Hono): void;
  /** Under /api without a token (registration, login); paths relative to /api. */
  public?(api: Hono): void;
  /** Under /api behind the bearer token (`c.get('user')` is its user); paths relative to /api. */
  api?(api: Hono<AppEnv>): void;
}

export interface HttpAppDeps {
  auth: Pick<AuthService, 'authenticate'>;
  schemas: Schemas;
  logger: Logger;
  bodyMaxBytes: number;
  /** Answers /readyz: each dependency's state and the mode. */
  readiness: () => Promise<{ redis: boolean; postgres: boolean; mode: 'normal' | 'degraded' }>;
  /** Every feature's routes, mounted here, in this order. */
  routes: readonly HttpRoutes[];
  /** The web app's build (dist/web) served at / and /app/*; null or absent: not served (WEB_APP=false). */
  webAppDir?: string | null;
}

const errorBody = (err: AppError) => ({ error: err.toJSON() });

/**
 * The Hono application: the contract's error shape, health and docs, and every feature's routes,
 * all mounted here; nothing process-bound.
 */
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
  if (deps.webAppDir) webAppRoutes({ dir: deps.webAppDir })(app);
  // Before /api is mounted: a root route under /api (the admin broadcast) answers ahead of its token check.
  for (const routes of deps.routes) routes.root?.(app);

  const api = new Hono<AppEnv>();
  // Answers carry tokens and private messages: no cache may keep them.
  api.use(async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
  });
  api.use(limitBody(deps.bodyMaxBytes));
  // Ahead of the token check: they answer before it runs.
  const open = new Hono();
  for (const routes of deps.routes) routes.public?.(open);
  api.route('/', open);
  api.use(async (c, next) => {
    c.set('user', await deps.auth.authenticate(bearerToken(c.req.header('authorization'))));
    await next();
  });
  for (const routes of deps.routes) routes.api?.(api);
  app.route('/api', api);
  return app;
}
