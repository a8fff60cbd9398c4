import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queues/definitions.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

const USER = 'ops';
const PASSWORD = 'board-password-for-the-test';
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

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
    expect((await fetch(`${api.url}/admin/queues/api/queues`, { headers: basic('someone', PASSWORD) })).status).toBe(401);

    const page = await fetch(`${api.url}/admin/queues`, { headers: basic(USER, PASSWORD) });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const listed = await fetch(`${api.url}/admin/queues/api/queues`, { headers: basic(USER, PASSWORD) });
    expect(listed.status).toBe(200);
    const { queues } = (await listed.json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(Object.values(QUEUES).sort());
  });

  it('shows every queue by name in a real browser (headless Chromium)', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'parley-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      httpCredentials: { username: USER, password: PASSWORD },
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const response = await page.goto(`${api.url}/admin/queues`);
      expect(response?.status()).toBe(200);
      for (const name of Object.values(QUEUES)) {
        await page.getByText(name, { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
      }
      expect(await page.title()).toContain('Parley queues');
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});
