import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM } from '../helpers/chromium.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { buildIfStale, type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The web chat app (clients/web, from dist/web) in headless Chromium against real api and worker
 * processes: two people in two browser contexts.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = join(ROOT, 'test-results');
const PASSWORD = 'correct horse battery';

let env: TestEnv;
let api: RunningProcess;
let worker: RunningProcess;
let noWebApi: RunningProcess;
let port: number;
let browser: Browser;

/** A port free now: the api is started on it, and started again on it after a kill. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return p;
}

beforeAll(async () => {
  await buildIfStale();
  env = await createTestEnv();
  port = await freePort();
  [api, worker, noWebApi] = await Promise.all([
    startApiProcess({ ...env.env, PORT: String(port) }),
    startWorkerProcess(env.env),
    startApiProcess({ ...env.env, WEB_APP: 'false' }),
  ]);
  browser = await chromium.launch(CHROMIUM);
}, 240_000);
afterAll(async () => {
  await browser?.close();
  await Promise.all([api, worker, noWebApi].map((p) => p?.kill('SIGTERM')));
  await env?.cleanup();
});

/** A page of its own browser context (its own localStorage), with the browser's errors collected. */
async function person(viewport = { width: 1100, height: 760 }): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    // A refused connection while the api is down is what the test does; anything else is a bug.
    if (msg.type() === 'error' && !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(msg.text()))
      errors.push(msg.text());
  });
  return { page, errors };
}

async function logIn(page: Page, username: string, button: 'login' | 'register' = 'login'): Promise<void> {
  await page.goto(api.url);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click(`#${button}`);
  await page.waitForSelector('#main-view:not([hidden])');
  await page.locator('body[data-connection="open"]').waitFor({ state: 'attached' });
}

const message = (page: Page, text: string) => page.locator('#messages .msg .body', { hasText: text });
/** The message whose own body (not a quote of it in a reply) says `text`. */
const bubble = (page: Page, text: string, mine = false) =>
  page.locator(`#messages .msg${mine ? '.mine' : ''}`).filter({ has: page.locator('.body', { hasText: text }) });
const chatItem = (page: Page, title: string) => page.locator('#chat-list .chat-item', { hasText: title });

describe('the web chat app', () => {
  it('serves / with a self-only CSP and hashed, cached assets; WEB_APP=false: / is 404', async () => {
    const page = await fetch(`${api.url}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${port}`);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const js = /src="(\/app\/app-\w+\.js)"/.exec(html)?.[1];
    const css = /href="(\/app\/app-\w+\.css)"/.exec(html)?.[1];
    expect(js && css).toBeTruthy();
    for (const asset of [js, css]) {
      const r = await fetch(`${api.url}${asset}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toContain('immutable');
    }
    expect(html).not.toMatch(/https?:\/\//); // no CDN, nothing from elsewhere
    expect((await fetch(`${noWebApi.url}/`)).status).toBe(404);
  });

  it('two people chat live: typing, the message, "seen", an edit and a reaction on both; a reload keeps history and unread counts; the api restarted under the page', async () => {
    const http = new ApiClient(api.url);
    const bobUser: TestUser = await http.newUser('bob');
    const aliceName = `alice_${Date.now().toString(36)}`;
    const alice = await person();
    const bob = await person({ width: 390, height: 780 }); // a phone
    await logIn(alice.page, aliceName, 'register');
    await logIn(bob.page, bobUser.user.username);

    // Alice makes a chat with bob by his username and says hi: it shows in bob's list, unread.
    await alice.page.fill('#new-title', 'Web test');
    await alice.page.fill('#new-members', bobUser.user.username);
    await alice.page.click('#create-chat');
    await alice.page.waitForSelector('#chat-pane:not([hidden])');
    await alice.page.fill('#composer', 'hi bob');
    await alice.page.press('#composer', 'Enter');
    await message(alice.page, 'hi bob').waitFor();
    await chatItem(bob.page, 'Web test').locator('.unread', { hasText: '1' }).waitFor();
    await chatItem(bob.page, 'Web test').locator('.chat-last', { hasText: 'hi bob' }).waitFor();
    await chatItem(bob.page, 'Web test').click();
    await message(bob.page, 'hi bob').waitFor();
    // Presence: each sees the other online.
    await alice.page.locator('#members .dot.online').waitFor();
    await bob.page.locator('#members .dot.online').waitFor();

    // Typing, then the message, then "seen".
    await alice.page.locator('#composer').pressSequentially('how are', { delay: 20 });
    // The server forwards one typing frame per member and chat a second (TYPING_THROTTLE_MS), the
    // app one every two seconds of typing: she goes on typing (and unsaying) until bob sees it.
    const typingShown = bob.page.locator('#typing', { hasText: 'is typing' });
    await waitFor(
      async () => {
        await alice.page.locator('#composer').pressSequentially('x');
        await alice.page.press('#composer', 'Backspace');
        return typingShown.isVisible();
      },
      'bob sees alice typing',
      { intervalMs: 100 },
    );
    await alice.page.locator('#composer').pressSequentially(' you?');
    await alice.page.press('#composer', 'Enter');
    await message(bob.page, 'how are you?').waitFor();
    await bob.page.locator('#typing:empty').waitFor(); // her message ended her typing
    await bubble(alice.page, 'how are you?', true).locator('.seen').waitFor();
    expect(await alice.page.locator('.seen').innerText()).toContain('Seen by');
    // The ticks: accepted, then persisted (the worker wrote it to PostgreSQL).
    await bubble(alice.page, 'how are you?', true).locator('.tick[data-state="persisted"]').waitFor();

    // Bob replies to it; alice edits hers; bob reacts: both see both.
    const asked = bubble(bob.page, 'how are you?');
    await asked.hover();
    await asked.locator('.act-reply').click();
    await bob.page.fill('#composer', 'fine, thanks');
    await bob.page.press('#composer', 'Enter');
    await bubble(alice.page, 'fine, thanks').locator('.reply-quote').waitFor();
    const mine = bubble(alice.page, 'how are you?', true);
    await mine.hover();
    await mine.locator('.act-edit').click();
    await alice.page.fill('#composer', 'how are you doing?');
    await alice.page.press('#composer', 'Enter');
    for (const page of [alice.page, bob.page]) {
      await bubble(page, 'how are you doing?').locator('.edited').waitFor();
    }
    const edited = bubble(bob.page, 'how are you doing?');
    await edited.hover();
    await edited.locator('.act-react[data-emoji="👍"]').click();
    for (const page of [alice.page, bob.page]) {
      await bubble(page, 'how are you doing?').locator('.reaction[data-emoji="👍"]', { hasText: '1' }).waitFor();
    }
    // Delete her own first message: a tombstone on both.
    const first = bubble(alice.page, 'hi bob', true);
    await first.hover();
    await first.locator('.act-delete').click();
    await bob.page.locator('#messages .msg.deleted').waitFor();
    mkdirSync(RESULTS, { recursive: true });
    await alice.page.screenshot({ path: join(RESULTS, 'web-chat.png'), fullPage: true });

    // Bob leaves the chat view (the list only); alice sends two; bob's list counts them, and a
    // reload of either page keeps the history and the count.
    await bob.page.goto(api.url);
    await chatItem(bob.page, 'Web test').waitFor();
    for (const text of ['one more', 'and another']) {
      await alice.page.fill('#composer', text);
      await alice.page.press('#composer', 'Enter');
      await message(alice.page, text).waitFor();
    }
    await chatItem(bob.page, 'Web test').locator('.unread', { hasText: '2' }).waitFor();
    await bob.page.reload();
    await chatItem(bob.page, 'Web test').locator('.unread', { hasText: '2' }).waitFor();
    await chatItem(bob.page, 'Web test').locator('.chat-last', { hasText: 'and another' }).waitFor();
    await alice.page.reload();
    await message(alice.page, 'how are you doing?').waitFor();
    await message(alice.page, 'fine, thanks').waitFor();
    await message(alice.page, 'one more').waitFor();
    await chatItem(bob.page, 'Web test').click();
    await message(bob.page, 'and another').waitFor();
    await message(bob.page, 'how are you doing?').waitFor();
    await bob.page.click('#back'); // on a phone: back to the list
    await bob.page.locator('#chat-list .chat-item .unread').waitFor({ state: 'detached' });
    await chatItem(bob.page, 'Web test').click();

    // The api dies under both pages and comes back on the same port: the banner shows and goes,
    // and what alice typed meanwhile arrives once.
    await api.kill('SIGKILL');
    await alice.page.locator('#banner:not([hidden])').waitFor();
    await bob.page.locator('#banner:not([hidden])').waitFor();
    await alice.page.fill('#composer', 'sent while the api was down');
    await alice.page.press('#composer', 'Enter');
    await alice.page.locator('#messages .msg.pending .tick[data-state="sending"]').waitFor();
    api = await startApiProcess({ ...env.env, PORT: String(port) });
    for (const page of [alice.page, bob.page]) await page.locator('#banner').waitFor({ state: 'hidden' });
    await message(bob.page, 'sent while the api was down').waitFor();
    await bubble(alice.page, 'sent while the api was down', true).locator('.tick[data-state="persisted"]').waitFor();
    expect(await message(bob.page, 'sent while the api was down').count()).toBe(1);
    expect(await message(alice.page, 'sent while the api was down').count()).toBe(1);
    const chats = await http.request('GET', '/api/chats', undefined, bobUser.token);
    const chatId = (chats.body as { chats: { id: string }[] }).chats[0]!.id;
    await waitFor(async () => {
      const h = await http.request('GET', `/api/chats/${chatId}/messages?limit=200`, undefined, bobUser.token);
      const bodies = (h.body as { messages: { body: string }[] }).messages.map((m) => m.body);
      return bodies.filter((b) => b === 'sent while the api was down').length === 1;
    }, 'the message stored once');
    await alice.page.screenshot({ path: join(RESULTS, 'web-chat.png'), fullPage: true });
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it('loads older history as the message list is scrolled to its top, each message once, in order', async () => {
    const http = new ApiClient(api.url);
    const [carol, dave] = await Promise.all([http.newUser('carol'), http.newUser('dave')]);
    const chat = await http.newChat(carol, [dave], 'Long history');
    const TOTAL = 75;
    for (let n = 1; n <= TOTAL; n++) expect((await http.send(dave.token, chat.id, `old #${n}`)).status).toBe(201);
    const reader = await person();
    await logIn(reader.page, carol.user.username);
    await chatItem(reader.page, 'Long history').click();
    // Exactly that body (`old #1` is in `old #15` too).
    const exactly = (text: string) => reader.page.locator('#messages .msg .body', { hasText: new RegExp(`^${text}$`) });
    await exactly(`old #${TOTAL}`).waitFor();
    const shown = () => reader.page.locator('#messages .msg .body').allTextContents();
    // The first page is the newest ones only: the oldest comes from scrolling up, a page at a time.
    expect(await exactly('old #1').count()).toBe(0);
    await waitFor(
      async () => {
        if ((await exactly('old #1').count()) > 0) return true;
        await reader.page.locator('#messages').evaluate((box) => {
          box.scrollTop = 0;
          box.dispatchEvent(new Event('scroll'));
        });
        return false;
      },
      'the oldest message after scrolling up',
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(await shown()).toEqual(Array.from({ length: TOTAL }, (_, i) => `old #${i + 1}`));
    expect(reader.errors).toEqual([]);
  });
});
