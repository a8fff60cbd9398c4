import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queues/definitions.js';
import { CHROMIUM } from '../helpers/chromium.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

const USER = 'ops';
const PASSWORD = 'board-password-for-the-test';
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
/** The queue the state-changing requests below aim at (no worker runs in this file). */
const TARGET = QUEUES.archive;
/** The queues opened without webhook receivers (`webhooks` is a family, one `webhooks-<id>` per receiver). */
const SINGLE_QUEUES = Object.values(QUEUES).filter((n) => n !== QUEUES.webhooks);

let env: TestEnv;
let api: RunningProcess;

beforeAll(async () => {
  env = await createTestEnv({ BULL_BOARD_USER: USER, BULL_BOARD_PASSWORD: PASSWORD });
  api = await startApiProcess(env.env);
});
afterAll(async () => {
  await api?.kill();
  await env?.cleanup();
});

describe('Bull Board', () => {
  it('answers 401 with a challenge without credentials or with wrong ones, 200 with them', async () => {
    const none = await fetch(`${api.url}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(await none.json()).toMatchObject({ error: { code: 'unauthorized' } });
    expect((await fetch(`${api.url}/admin/queues`, { headers: basic(USER, 'wrong') })).status).toBe(401);
    expect((await fetch(`${api.url}/admin/queues/api/queues`, { headers: basic('someone', PASSWORD) })).status).toBe(
      401,
    );

    const page = await fetch(`${api.url}/admin/queues`, { headers: basic(USER, PASSWORD) });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const listed = await fetch(`${api.url}/admin/queues/api/queues`, { headers: basic(USER, PASSWORD) });
    expect(listed.status).toBe(200);
    const { queues } = (await listed.json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name).sort()).toEqual([...SINGLE_QUEUES].sort());
  });

  it("refuses a state-changing request with credentials but without the board's own Origin (403), and takes it with", async () => {
    const body = JSON.stringify({ name: 'forged', data: {} });
    const before = await targetState();
    for (const origin of [undefined, 'http://attacker.example', 'null', `http://${new URL(api.url).hostname}:1`]) {
      const r = await boardPost(`/api/queues/${TARGET}/add`, body, origin);
      expect({ origin, status: r.status }).toEqual({ origin, status: 403 });
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'forbidden' } });
      expect((await boardPost(`/api/queues/${TARGET}/retry/failed`, '', origin, 'PUT')).status).toBe(403);
    }
    expect((await targetState()).counts.waiting).toBe(before.counts.waiting);

    const own = await boardPost(`/api/queues/${TARGET}/add`, body, new URL(api.url).origin);
    expect(own.status).toBe(200);
    expect((await targetState()).counts.waiting).toBe(before.counts.waiting + 1);
  });

  it("in a browser holding the credentials, another site cannot add a job; the board's own UI still pauses a queue", async () => {
    // A page on another site that posts a job the way a browser allows any site to: a text/plain
    // form, with no CORS preflight, carrying the cached basic-auth credentials.
    const attacker = await serve(
      `<form id="f" method="POST" enctype="text/plain" action="${api.url}/admin/queues/api/queues/${TARGET}/add">` +
        `<input name='{"name":"forged","data":{},"pad":"' value='"}'></form><script>document.getElementById('f').submit()</script>`,
    );
    const before = await targetState();
    await withBrowser(async (page) => {
      expect((await page.goto(`${api.url}/admin/queues`))?.status()).toBe(200);
      const forged = page.waitForResponse((r) => r.url().endsWith(`/api/queues/${TARGET}/add`));
      await page.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
      expect((await forged).status()).toBe(403);
      expect((await targetState()).counts.waiting).toBe(before.counts.waiting);

      // The board's own page: the queue's menu, Pause, Confirm (a PUT from the board's origin).
      expect(before.isPaused).toBe(false);
      await page.goto(`${api.url}/admin/queues/queue/${TARGET}`);
      const paused = page.waitForResponse((r) => r.url().endsWith(`/api/queues/${TARGET}/pause`));
      await page.locator('button[class*=trigger]').click();
      await page.getByRole('menuitem', { name: 'Pause' }).click();
      await page.getByRole('button', { name: 'Confirm' }).click();
      expect((await paused).status()).toBe(200);
      await page.getByText('[ Paused ]').first().waitFor({ state: 'visible', timeout: 20_000 });
    }).finally(() => new Promise((resolve) => attacker.close(resolve)));
    expect((await targetState()).isPaused).toBe(true);
  });

  it('shows every queue by name in a real browser (headless Chromium)', async () => {
    await withBrowser(async (page) => {
      const response = await page.goto(`${api.url}/admin/queues`);
      expect(response?.status()).toBe(200);
      for (const name of SINGLE_QUEUES) {
        await page.getByText(name, { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
      }
      expect(await page.title()).toContain('Parley queues');
    });
  });
});

/** The target queue as the board reports it. */
async function targetState(): Promise<{ counts: { waiting: number }; isPaused: boolean }> {
  const r = await fetch(`${api.url}/admin/queues/api/queues`, { headers: basic(USER, PASSWORD) });
  expect(r.status).toBe(200);
  const { queues } = (await r.json()) as { queues: { name: string; counts: { waiting: number }; isPaused: boolean }[] };
  return queues.find((q) => q.name === TARGET)!;
}

/** A request to the board with credentials, a text/plain body, and the given Origin (or none). */
function boardPost(
  path: string,
  body: string,
  origin: string | undefined,
  method = 'POST',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}/admin/queues${path}`, {
      method,
      headers: { ...basic(USER, PASSWORD), 'content-type': 'text/plain', ...(origin ? { origin } : {}) },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A one-page HTTP server on another port (another origin, and with `localhost` another site). */
async function serve(html: string): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Runs `use` with a page of a fresh headless Chromium that answers the board's challenge. */
async function withBrowser(use: (page: Page) => Promise<void>): Promise<void> {
  const profile = await mkdtemp(join(tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    ...CHROMIUM,
    httpCredentials: { username: USER, password: PASSWORD },
  });
  try {
    await use(context.pages()[0] ?? (await context.newPage()));
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}
