import { AppError } from '../domain/errors.js';
import type { Schemas } from '../domain/schemas.js';
import { clientAddress } from '../http/client-address.js';
import { bearerToken, parseQuery, readBody } from '../http/context.js';
import type { Keys } from '../redis/keys.js';
import type { AuthService } from '../services/auth-service.js';
import type { SessionRevocation } from '../services/session-revocation.js';
import type { Feature } from './feature.js';

export interface AccountsDeps {
  auth: AuthService;
  revocation: SessionRevocation;
  schemas: Schemas;
  keys: Pick<Keys, 'channels'>;
  /** Take the client address (login and registration limits) from X-Forwarded-For (TRUST_PROXY). */
  trustProxy: boolean;
}

/**
 * Users and sessions.
 * - POST /api/users, POST /api/sessions (no token): registration and login, limited per client
 *   address (and logins per username).
 * - GET /api/me; GET /api/users?username= (a user by username, to add to a chat).
 * - DELETE /api/sessions/current (the token that authenticated the request) and DELETE
 *   /api/sessions (every session of its user: log out everywhere, e.g. after a lost device):
 *   effective on every api process at once, through `channel:session-revoked`; the sockets opened
 *   with an ended session close with 4001 (sessionEnded).
 */
export function accountsFeature(deps: AccountsDeps): Feature {
  const { auth, revocation, schemas } = deps;
  return {
    name: 'accounts',
    routes: {
      public(api) {
        api.post('/users', async (c) => {
          const input = await readBody(c, schemas.registerBody);
          return c.json({ user: await auth.register(input, clientAddress(c, deps.trustProxy)) }, 201);
        });
        api.post('/sessions', async (c) => {
          const input = await readBody(c, schemas.loginBody);
          return c.json(await auth.login(input, clientAddress(c, deps.trustProxy)), 200);
        });
      },
      api(api) {
        api.get('/me', (c) => c.json({ user: c.get('user') }));
        api.get('/users', async (c) => {
          const { username } = parseQuery(c, schemas.userLookupQuery);
          return c.json({ user: await auth.findUser(username) });
        });
        api.delete('/sessions/current', async (c) => {
          // Authenticated already (the /api token check), so the token is there and valid.
          const token = bearerToken(c.req.header('authorization'));
          if (!token) throw new AppError('unauthorized', 'missing or invalid token');
          await revocation.revoke(token);
          return c.body(null, 204);
        });
        api.delete('/sessions', async (c) => {
          await revocation.revokeAll(c.get('user').id);
          return c.body(null, 204);
        });
      },
    },
    channels: [
      { name: deps.keys.channels.sessionRevoked, scope: 'global', handle: (hash) => revocation.received(hash) },
    ],
  };
}
