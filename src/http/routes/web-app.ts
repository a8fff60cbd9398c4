import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';

/**
 * The web chat app (clients/web, bundled by `npm run build` into dist/web): GET / answers its
 * index.html and /app/* its bundle and style sheet. Built only on @parley/client, it talks to this
 * process like any other client.
 */

/**
 * dist/web, from this module as compiled (dist/src/http/routes/) or run from source
 * (src/http/routes/, which has no build of its own: the repository's dist/web then).
 */
export function defaultWebAppDir(): string {
  const up = fileURLToPath(new URL('../../../', import.meta.url));
  return basename(up) === 'dist' ? join(up, 'web') : join(up, 'dist', 'web');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

interface Bundle {
  index: Buffer;
  assets: Map<string, { body: Buffer; type: string }>;
}

/** The files of a build; null when there is none (the api run from source without `npm run build`). */
function loadBundle(dir: string): Bundle | null {
  const indexPath = join(dir, 'index.html');
  if (!existsSync(indexPath)) return null;
  const assets = new Map<string, { body: Buffer; type: string }>();
  const appDir = join(dir, 'app');
  if (existsSync(appDir)) {
    for (const name of readdirSync(appDir)) {
      const type = TYPES[extname(name)];
      if (type) assets.set(name, { body: readFileSync(join(appDir, name)), type });
    }
  }
  return { index: readFileSync(indexPath), assets };
}

/** A Host header fit to be named in the CSP (anything else: 'self' alone). */
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * Only this origin: its script and style sheet, its API and its WebSocket (named as ws:/wss: of
 * the request's host, since not every browser counts those as 'self'), no inline code, no frames.
 */
export function webAppCsp(host: string | undefined): string {
  const ws = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Mounts GET / and GET /app/:name. The build is read once, when first asked for (and looked for
 * again while it is missing); its asset names carry a content hash, so they may be cached for
 * good, while index.html is revalidated every time.
 */
export function webAppRoutes(deps: { dir: string }) {
  let bundle: Bundle | null = null;
  const current = () => (bundle ??= loadBundle(deps.dir));
  return (app: Hono): void => {
    app.get('/', (c) => {
      const b = current();
      if (!b) {
        return c.text('The web app is not built: run `npm run build` (then reload this page).\n', 503, {
          'cache-control': 'no-store',
        });
      }
      return c.body(new Uint8Array(b.index), 200, {
        'content-type': TYPES['.html'] ?? 'text/html',
        'cache-control': 'no-cache',
        'content-security-policy': webAppCsp(c.req.header('host')),
      });
    });
    app.get('/app/:name', (c) => {
      const asset = current()?.assets.get(c.req.param('name'));
      if (!asset) return c.notFound();
      return c.body(new Uint8Array(asset.body), 200, {
        'content-type': asset.type,
        'cache-control': 'public, max-age=31536000, immutable',
        'x-content-type-options': 'nosniff',
      });
    });
  };
}
