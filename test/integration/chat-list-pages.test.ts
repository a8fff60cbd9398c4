import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshMessage } from '../../src/domain/types.js';
import { createDirectMessageStore } from '../../src/stores/direct-message-store.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * GET /api/chats in pages (`?limit=&cursor=` → `{chats, nextCursor}`), most recent activity first:
 * a chat's newest message in PostgreSQL (the persist worker's batch, or a degraded-mode send),
 * else its creation. The cursor is a keyset on that order, so pages neither repeat nor skip a
 * chat when messages arrive while a client walks them.
 */
let env: TestEnv;
let app: InProcess;

beforeAll(async () => {
  env = await createTestEnv();
  app = await startInProcess(env);
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

interface Page {
  chats: { id: string; title: string; lastSeq: number; unreadCount: number; lastMessage: { body: string } | null }[];
  nextCursor: string | null;
}

const page = async (user: TestUser, query = '') => {
  const r = await app.api.request<Page>('GET', `/api/chats${query ? `?${query}` : ''}`, undefined, user.token);
  expect(r.status).toBe(200);
  return r.body;
};

/** Every page from the first, calling `between(n)` after page n. */
async function walk(user: TestUser, limit: number, between: (n: number) => Promise<void> = async () => {}) {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const p: Page = await page(user, `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    pages.push(p);
    await between(pages.length);
    expect(p.nextCursor === null || typeof p.nextCursor === 'string').toBe(true);
    cursor = p.nextCursor;
  } while (cursor !== null && pages.length < 100);
  return pages;
}

/** The chat's activity in PostgreSQL has reached its message `seq` (the persist batch ran). */
async function sendPersisted(user: TestUser, chatId: string, body: string) {
  const sent = await app.api.send(user.token, chatId, body);
  expect(sent.status).toBe(201);
  await waitFor(async () => {
    const { rows } = await env.pool.query(
      'SELECT 1 FROM chats c JOIN messages m ON m.chat_id = c.id WHERE c.id = $1 AND m.seq = $2 AND c.last_activity_at >= m.created_at',
      [chatId, sent.body.message.seq],
    );
    return rows.length === 1;
  }, `activity of ${body}`);
}

async function newChats(owner: TestUser, n: number, members: TestUser[] = []) {
  const chats: { id: string }[] = [];
  // One after the other: each chat is created after the previous one, so their order is known.
  for (let i = 0; i < n; i++) chats.push(await app.api.newChat(owner, members, `chat ${i}`));
  return chats.map((c) => c.id);
}

describe('the chat list', () => {
  it('walks every page in activity order while messages arrive: no chat twice, none that kept its place missing', async () => {
    const [u, other] = await Promise.all([app.api.newUser('u'), app.api.newUser('other')]);
    const c = await newChats(u, 12, [other]);
    for (const i of [0, 3, 6]) await sendPersisted(other, c[i]!, `hello ${i}`);
    // Chats with a message first (newest first), then the others by creation, newest first.
    const before = [6, 3, 0, 11, 10, 9, 8, 7, 5, 4, 2, 1].map((i) => c[i]!);

    const pages = await walk(u, 5, async (n) => {
      if (n !== 1) return;
      // After page 1: a message in a chat page 1 listed, and in one a later page would have.
      await sendPersisted(other, c[10]!, 'again on page 1');
      await sendPersisted(other, c[1]!, 'from page 3');
    });

    const ids = pages.flatMap((p) => p.chats.map((x) => x.id));
    expect(new Set(ids).size).toBe(ids.length); // none twice
    expect(pages.map((p) => p.chats.length)).toEqual([5, 5, 1]);
    expect(pages.at(-1)!.nextCursor).toBeNull();
    // Each page in the order of the walk's start, and every chat that kept its place listed once.
    // c1 moved ahead of the cursor (after page 1, it is the newest chat): this walk does not list
    // it again, the next walk lists it first (and its message reached the members live).
    expect(ids).toEqual(before.filter((id) => id !== c[1]));
    expect(pages[0]!.chats.find((x) => x.id === c[6])).toMatchObject({
      lastSeq: 1,
      lastMessage: { body: 'hello 6' },
      unreadCount: 1,
    });

    const again = await walk(u, 5);
    expect(again.flatMap((p) => p.chats.map((x) => x.id))).toEqual([
      c[1],
      c[10],
      ...before.filter((id) => id !== c[1] && id !== c[10]),
    ]);
  });

  it('pages through chats of equal activity without repeating or skipping one', async () => {
    const u = await app.api.newUser('ties');
    const c = await newChats(u, 7);
    // Same activity to the microsecond: the chat id breaks the tie, and the cursor keeps it.
    await env.pool.query(
      `UPDATE chats SET last_activity_at = '2030-01-01T00:00:00.123456Z' WHERE id = ANY($1::uuid[])`,
      [c],
    );
    const ids = (await walk(u, 2)).flatMap((p) => p.chats.map((x) => x.id));
    expect(ids).toEqual([...c].sort().reverse());
  });

  it('moves a chat up with a degraded-mode send (written straight to PostgreSQL)', async () => {
    const u = await app.api.newUser('degraded');
    const c = await newChats(u, 3);
    expect((await page(u)).chats.map((x) => x.id)).toEqual([c[2], c[1], c[0]]);
    const direct = createDirectMessageStore(env.pool, env.config.DEGRADED_SEQ_GAP);
    await direct.send({
      id: randomUUID(),
      chatId: c[0]!,
      senderId: u.user.id,
      body: 'while Redis was away',
      clientMsgId: null,
      createdAt: new Date().toISOString(),
      ...freshMessage(),
    });
    expect((await page(u)).chats.map((x) => x.id)).toEqual([c[0], c[2], c[1]]);
  });

  it('answers 50 chats by default, up to 200 with limit, and the rest on the next page', async () => {
    const u = await app.api.newUser('many');
    const c = await newChats(u, 53);
    const first = await page(u);
    expect(first.chats).toHaveLength(50);
    expect(first.nextCursor).toEqual(expect.any(String));
    const rest = await page(u, `cursor=${encodeURIComponent(first.nextCursor!)}`);
    expect(rest.chats.map((x) => x.id)).toEqual([c[2], c[1], c[0]]);
    expect(rest.nextCursor).toBeNull();
    const all = await page(u, 'limit=200&cursor=');
    expect(all.chats).toHaveLength(53);
    expect(all.nextCursor).toBeNull();
    // A user without chats: one empty last page.
    expect(await page(await app.api.newUser('none'))).toEqual({ chats: [], nextCursor: null });
  });

  it('refuses a bad limit or cursor with validation_failed', async () => {
    const u = await app.api.newUser('bad');
    await newChats(u, 2);
    const { nextCursor } = await page(u, 'limit=1');
    const tampered = Buffer.from('c1:12:not-a-chat-id').toString('base64url');
    for (const query of [
      'limit=0',
      'limit=201',
      'limit=1.5',
      'limit=x',
      'limit=',
      'cursor=%%%',
      'cursor=abc',
      `cursor=${tampered}`,
      `cursor=${nextCursor}&cursor=${nextCursor}`,
    ]) {
      const r = await app.api.request('GET', `/api/chats?${query}`, undefined, u.token);
      expect({ query, status: r.status, code: r.body.error?.code }).toEqual({
        query,
        status: 400,
        code: 'validation_failed',
      });
    }
  });
});
