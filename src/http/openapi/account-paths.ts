import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { userSchema } from '../../domain/response-schemas.js';
import type { Schemas } from '../../domain/schemas.js';
import { asUser, bodyErrors, errors, json, noAuth, userErrors } from './responses.js';

/** The routes of accountRoutes and sessionRoutes: registration, login, the caller, logout. */
export function registerAccountPaths(registry: OpenAPIRegistry, schemas: Schemas): void {
  const body = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema } } });

  registry.registerPath({
    method: 'post',
    path: '/api/users',
    tags: ['accounts'],
    summary: 'Register',
    description: 'Creates an account. Limited per client address (REGISTRATIONS_PER_MIN).',
    security: noAuth,
    request: { body: body(schemas.registerBody) },
    responses: {
      201: json('The new user', z.object({ user: userSchema })),
      ...errors({
        ...bodyErrors,
        conflict: 'the username is taken',
        rate_limited: 'too many registrations from this address',
        unavailable: 'too many password hashes queued (with Retry-After), or a dependency is down',
      }),
    },
  });

  registry.registerPath({
    method: 'post',
    path: '/api/sessions',
    tags: ['accounts'],
    summary: 'Log in',
    description:
      'Answers a token for `Authorization: Bearer` and the WebSocket. Limited per client address (LOGINS_PER_MIN) and, for failures, per username (LOGIN_FAILURES_PER_MIN).',
    security: noAuth,
    request: { body: body(schemas.loginBody) },
    responses: {
      200: json(
        'A session token and its user',
        z.object({ token: z.string().meta({ description: 'opaque; valid TOKEN_TTL_S seconds' }), user: userSchema }),
      ),
      ...errors({
        ...bodyErrors,
        unauthorized: 'wrong username or password',
        rate_limited: 'too many logins from this address, or failures for this username',
        unavailable: 'too many password hashes queued (with Retry-After), or a dependency is down',
      }),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/me',
    tags: ['accounts'],
    summary: 'The caller',
    security: asUser,
    responses: { 200: json("The token's user", z.object({ user: userSchema })), ...errors(userErrors) },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/users',
    tags: ['accounts'],
    summary: 'Find a user by username',
    description: 'The user with this username (case-insensitively), e.g. to add to a chat by its id.',
    security: asUser,
    request: { query: schemas.userLookupQuery },
    responses: {
      200: json('The user', z.object({ user: userSchema })),
      ...errors({ ...userErrors, validation_failed: 'no username, or one too long', not_found: 'no such user' }),
    },
  });

  registry.registerPath({
    method: 'delete',
    path: '/api/sessions/current',
    tags: ['accounts'],
    summary: 'Log out this session',
    description:
      "Ends the token that authenticated the request, on every api process; that session's sockets close with 4001.",
    security: asUser,
    responses: { 204: { description: 'The session ended' }, ...errors(userErrors) },
  });

  registry.registerPath({
    method: 'delete',
    path: '/api/sessions',
    tags: ['accounts'],
    summary: 'Log out everywhere',
    description: 'Ends every session of the caller; their sockets close with 4001.',
    security: asUser,
    responses: { 204: { description: 'Every session ended' }, ...errors(userErrors) },
  });
}
