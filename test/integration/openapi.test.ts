import { createHash } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorBodySchema } from '../../src/domain/response-schemas.js';
import { BULL_BOARD_PATH } from '../../src/http/routes/bull-board.js';
import { type ApiWithRoutes, startApiWithRoutes } from '../helpers/api-with-routes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

/**
 * GET /api/openapi.json is a valid OpenAPI 3.1 document of exactly the routes the real
 * composition holds (Hono's own list), the contract's routes among them; GET /docs is a page
 * that loads with nothing from elsewhere.
 */

/** docs/protocol.md's HTTP table: `built` says whether the server has the route yet. */
const CONTRACT: { method: string; path: string; built: boolean }[] = [
  { method: 'post', path: '/api/users', built: true },
  { method: 'post', path: '/api/sessions', built: true },
  { method: 'get', path: '/api/me', built: true },
  { method: 'post', path: '/api/chats', built: true },
  { method: 'get', path: '/api/chats', built: true },
  { method: 'get', path: '/api/chats/{chatId}', built: true },
  { method: 'post', path: '/api/chats/{chatId}/members', built: true },
  { method: 'delete', path: '/api/chats/{chatId}/members/{userId}', built: true },
  { method: 'delete', path: '/api/sessions', built: true },
  { method: 'post', path: '/api/chats/{chatId}/messages', built: true },
  { method: 'get', path: '/api/chats/{chatId}/messages', built: true },
  { method: 'post', path: '/api/chats/{chatId}/read', built: true },
  { method: 'get', path: '/api/users/{userId}/presence', built: true },
  { method: 'patch', path: '/api/chats/{chatId}/messages/{seq}', built: true },
  { method: 'delete', path: '/api/chats/{chatId}/messages/{seq}', built: true },
  { method: 'put', path: '/api/chats/{chatId}/messages/{seq}/reactions/{emoji}', built: true },
  { method: 'delete', path: '/api/chats/{chatId}/messages/{seq}/reactions/{emoji}', built: true },
  { method: 'get', path: '/api/openapi.json', built: true },
  { method: 'get', path: '/healthz', built: true },
  { method: 'get', path: '/readyz', built: true },
  { method: 'get', path: '/metrics', built: true },
  { method: 'get', path: BULL_BOARD_PATH, built: true },
];

/** Documented, but answered by the WebSocket gateway on the same server, not by Hono. */
const NOT_HONO = new Set(['get /ws']);
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

let env: TestEnv;
let app: ApiWithRoutes;
let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

beforeAll(async () => {
  env = await createTestEnv();
  // Bull Board and the admin routes mounted, as in a configured deployment.
  app = await startApiWithRoutes(env, {
    BULL_BOARD_PASSWORD: 'a-board-password-long-enough',
    ADMIN_TOKEN: 'an-admin-token-long-enough-1234',
  });
  const r = await app.api.request('GET', '/api/openapi.json');
  expect(r.status).toBe(200);
  doc = r.body as typeof doc;
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

/** "method path" of each operation in the document. */
function documented(): Set<string> {
  return new Set(
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => HTTP_METHODS.includes(m))
        .map((m) => `${m} ${path}`),
    ),
  );
}

/** "method path" of each route Hono serves, in OpenAPI's spelling; middleware (ALL) left out. */
function served(): Set<string> {
  return new Set(
    app.routes
      .filter((r) => r.method !== 'ALL')
      // Bull Board's own pages and API below its root are its business, documented as one entry.
      .filter((r) => !r.path.startsWith(`${BULL_BOARD_PATH}/`))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
  );
}

describe('GET /api/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document, served without a token', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it("lists every route of the contract's HTTP table that the server has, and none it lacks", () => {
    const docs = documented();
    const routes = served();
    for (const { method, path, built } of CONTRACT) {
      const key = `${method} ${path}`;
      // Once a route is built, flip `built` here: the document must then list it.
      expect({ key, served: routes.has(key) }).toEqual({ key, served: built });
      expect({ key, documented: docs.has(key) }).toEqual({ key, documented: built });
    }
  });

  it('documents exactly the routes Hono holds', () => {
    const docs = documented();
    const routes = served();
    expect(
      [...routes].filter((r) => !docs.has(r)),
      'served but not documented',
    ).toEqual([]);
    expect(
      [...docs].filter((d) => !routes.has(d) && !NOT_HONO.has(d)),
      'documented but not served',
    ).toEqual([]);
  });

  it('describes the error shape the routes answer, with their codes and statuses', async () => {
    const bad = await app.api.request('POST', '/api/users', { username: 'x' });
    expect(bad.status).toBe(400);
    expect(errorBodySchema.parse(bad.body).error.code).toBe('validation_failed');
    const op = doc.paths['/api/users']?.post as {
      responses: Record<string, { description: string; content?: unknown }>;
    };
    expect(op.responses['400']?.description).toMatch(/^`validation_failed`/);
    expect(op.responses['409']?.description).toMatch(/^`conflict`/);
    const send = doc.paths['/api/chats/{chatId}/messages']?.post as {
      responses: Record<string, { headers?: Record<string, unknown> }>;
    };
    expect(Object.keys(send.responses['429']?.headers ?? {})).toEqual(['Retry-After']);
  });
});

describe('GET /docs', () => {
  it('is a page of every route that loads nothing from elsewhere', async () => {
    const res = await fetch(`${app.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    for (const key of documented()) expect(html).toContain(`<code>${key.split(' ')[1]}</code>`);
    expect(html).toContain('WebSocket frames');
    expect(html).toContain('id="schema-ServerFrame"');
    // No script, image, stylesheet or frame from anywhere: the only asset is the inline style,
    // which the page's CSP allows by its hash (a browser would drop it on a mismatch).
    expect(html).not.toMatch(/<(script|img|link|iframe)\b/i);
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
  });
});
