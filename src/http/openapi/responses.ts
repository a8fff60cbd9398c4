import type { ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../domain/errors.js';
import { errorBodySchema } from '../../domain/response-schemas.js';

/** Building blocks of the path registrations: answers, errors and who may call. */

/** Security requirement of the routes a user's token opens (`Authorization: Bearer <token>`). */
export const asUser: RouteConfig['security'] = [{ bearerAuth: [] }];
/** The admin routes (`Authorization: Bearer <ADMIN_TOKEN>`). */
export const asAdmin: RouteConfig['security'] = [{ adminToken: [] }];
/** No credentials at all. */
export const noAuth: RouteConfig['security'] = [];

export function json(description: string, schema: z.ZodType): ResponseConfig {
  return { description, content: { 'application/json': { schema } } };
}

const retryAfter = z.object({
  'Retry-After': z.string().regex(/^\d+$/).meta({ description: 'seconds to wait before trying again' }),
});

/**
 * Error answers, one per code, each `{"error": {code, message}}` with the code's status (the
 * one table in domain/errors.ts); `rate_limited` carries Retry-After. `why` says when each
 * happens on this route.
 */
export function errors(why: Partial<Record<ErrorCode, string>>): Record<string, ResponseConfig> {
  const out: Record<string, ResponseConfig> = {};
  for (const [code, text] of Object.entries(why) as [ErrorCode, string][]) {
    out[String(ERROR_CODES[code].status)] = {
      description: `\`${code}\`: ${text}`,
      ...(code === 'rate_limited' ? { headers: retryAfter } : {}),
      content: { 'application/json': { schema: errorBodySchema } },
    };
  }
  return out;
}

/** What every route behind a user token may answer besides its own. */
export const userErrors = {
  unauthorized: 'no token, or a token that is unknown, expired or ended',
  unavailable: 'a dependency (PostgreSQL, Redis) is down; try again',
} as const;

/** What every route with a JSON body may answer besides its own. */
export const bodyErrors = {
  validation_failed: 'the body is not JSON or does not match the schema',
  payload_too_large: 'the body is over HTTP_BODY_MAX bytes',
} as const;
