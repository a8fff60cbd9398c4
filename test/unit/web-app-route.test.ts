import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { webAppCsp, webAppRoutes } from '../../src/http/routes/web-app.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function appOn(dir: string): Hono {
  const app = new Hono();
  webAppRoutes({ dir })(app);
  return app;
}

describe('the web app routes', () => {
  it('answer 503 with how to build while dist/web is missing, then serve the build once it is there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-web-'));
    dirs.push(dir);
    const app = appOn(join(dir, 'web'));
    const missing = await app.request('/', { headers: { host: '127.0.0.1:3000' } });
    expect(missing.status).toBe(503);
    expect(await missing.text()).toContain('npm run build');

    mkdirSync(join(dir, 'web', 'app'), { recursive: true });
    writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><p>app</p>');
    writeFileSync(join(dir, 'web', 'app', 'app-ABC.js'), 'console.log(1)');
    writeFileSync(join(dir, 'web', 'app', 'app-ABC.css'), 'p{}');
    const page = await app.request('/', { headers: { host: '127.0.0.1:3000' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toBe(webAppCsp('127.0.0.1:3000'));
    expect(await page.text()).toContain('<p>app</p>');

    const js = await app.request('/app/app-ABC.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await app.request('/app/app-ABC.css')).headers.get('content-type')).toMatch(/^text\/css/);
    expect((await app.request('/app/nope.js')).status).toBe(404);
    expect((await app.request('/app/..%2Findex.html')).status).toBe(404);
  });

  it('allow only this origin in the CSP: its scripts, styles, API and WebSocket; a strange Host adds nothing', () => {
    const csp = webAppCsp('chat.example.com:8443');
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self' ws://chat.example.com:8443 wss://chat.example.com:8443");
    expect(csp).not.toContain('unsafe');
    expect(webAppCsp('evil.example; script-src *')).toContain("connect-src 'self';");
    expect(webAppCsp(undefined)).toContain("connect-src 'self';");
  });
});
