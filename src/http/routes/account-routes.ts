import { Hono } from 'hono';
import type { Schemas } from '../../domain/schemas.js';
import type { AuthService } from '../../services/auth-service.js';
import { clientAddress } from '../client-address.js';
import { type AppEnv, readBody } from '../context.js';

/**
 * POST /api/users, POST /api/sessions (no auth) and GET /api/me. The first two are limited per
 * client address (and logins per username); `trustProxy` says where the address comes from.
 */
export function accountRoutes(deps: { auth: AuthService; schemas: Schemas; trustProxy: boolean }) {
  const app = new Hono<AppEnv>();

  app.post('/users', async (c) => {
    const input = await readBody(c, deps.schemas.registerBody);
    return c.json({ user: await deps.auth.register(input, clientAddress(c, deps.trustProxy)) }, 201);
  });

  app.post('/sessions', async (c) => {
    const input = await readBody(c, deps.schemas.loginBody);
    return c.json(await deps.auth.login(input, clientAddress(c, deps.trustProxy)), 200);
  });

  app.get('/me', (c) => c.json({ user: c.get('user') }));

  return app;
}
