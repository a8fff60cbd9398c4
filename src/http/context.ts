import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { describeIssue } from '../domain/schemas.js';
import type { User } from '../domain/types.js';

/** Hono environment of authenticated routes. */
export interface AppEnv {
  Variables: { user: User };
}

/** Parses the JSON body against a schema; malformed or invalid input is `validation_failed`. */
export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new AppError('validation_failed', 'body must be valid JSON');
  }
  return parse(schema, raw);
}

export function parse<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) throw new AppError('validation_failed', describeIssue(result.error));
  return result.data;
}

/** Parses the query string; a key given twice is refused, never silently resolved to one value. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const single: Record<string, string> = {};
  for (const [key, values] of Object.entries(c.req.queries())) {
    if (values.length > 1)
      throw new AppError('validation_failed', `query parameter '${key.slice(0, 40)}' given more than once`);
    single[key] = values[0] ?? '';
  }
  return parse(schema, single);
}

export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m?.[1];
}

/** Refuses a request body over `maxBytes` with 413 `payload_too_large`, before it is read whole. */
export function limitBody(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new AppError('payload_too_large', `request body over ${maxBytes} bytes`);
    },
  });
}
