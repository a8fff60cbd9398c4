import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import { createChatIndex } from '../../src/services/chat-index.js';
import { createMembershipService } from '../../src/services/membership-service.js';
import { type ChatStore, createChatStore } from '../../src/stores/chat-store.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The Redis copies of membership (a chat's member set, a user's chat ids) are filled from a
 * PostgreSQL read, so a change can commit between the read and the write. The race is made to
 * happen every time through the store seam: the change runs right after PostgreSQL answered the
 * fill's read and before the fill writes. The change goes through the real api, so it is
 * announced as in production; the fill must then write nothing.
 */
let env: TestEnv;
let app: InProcess;
let store: ChatStore;
const keys = () => createKeys(env.config.REDIS_KEY_PREFIX);

beforeAll(async () => {
  env = await createTestEnv();
  app = await startInProcess(env, { workers: false });
  store = createChatStore(env.pool);
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

/** `store`, except that the next call of `method` runs `between` after PostgreSQL answered it. */
function racing(method: 'memberIds' | 'chatIdsOf', between: () => Promise<void>): ChatStore {
  let pending: (() => Promise<void>) | null = between;
  const read = store[method] as (id: string) => Promise<unknown>;
  return {
    ...store,
    [method]: async (id: string) => {
      const answer = await read(id);
      const run = pending;
      pending = null;
      await run?.();
      return answer;
    },
  };
}

/** The membership modules as the api composes them, on the test's Redis prefix, over `chats`. */
function compose(chats: ChatStore) {
  const scripts = createScripts(env.redis);
  const chatIndex = createChatIndex({ chats, redis: env.redis, scripts, keys: keys(), ttlSeconds: 3600 });
  const membership = createMembershipService({
    redis: env.redis,
    keys: keys(),
    scripts,
    chats,
    userChats: chatIndex,
    ttlSeconds: 3600,
  });
  return { chatIndex, membership };
}

const leave = async (chatId: string, user: TestUser) =>
  expect(
    (await app.api.request('DELETE', `/api/chats/${chatId}/members/${user.user.id}`, undefined, user.token)).status,
  ).toBe(204);

describe('the member set cache', () => {
  it('is not refilled with a member who left after the fill read PostgreSQL', async () => {
    const [a, b] = await Promise.all([app.api.newUser('a'), app.api.newUser('b')]);
    const chat = await app.api.newChat(a, [b]);
    const { membership } = compose(racing('memberIds', () => leave(chat.id, b)));

    // The fill's read predates the leave: it still lists b.
    expect(await membership.load(chat.id)).toContain(b.user.id);

    // Sends check the cached set (send.lua): b left, so b's are refused, a's still go.
    expect((await app.api.send(b.token, chat.id, 'after leaving')).status).toBe(403);
    expect(await env.redis.sismember(keys().members(chat.id), b.user.id)).toBe(0);
    expect((await app.api.send(a.token, chat.id, 'still here')).status).toBe(201);
    expect(await env.redis.sismember(keys().members(chat.id), a.user.id)).toBe(1);
  });

  it('is not refilled with a member the creator removed after the fill read PostgreSQL', async () => {
    const [a, b, c] = await Promise.all([app.api.newUser('a'), app.api.newUser('b'), app.api.newUser('c')]);
    const chat = await app.api.newChat(a, [b, c]);
    const { membership } = compose(
      racing('memberIds', async () => {
        expect(
          (await app.api.request('DELETE', `/api/chats/${chat.id}/members/${c.user.id}`, undefined, a.token)).status,
        ).toBe(204);
      }),
    );
    await membership.load(chat.id);
    // History and typing check membership through the same set.
    expect((await app.api.history(c.token, chat.id)).status).toBe(403);
    expect((await app.api.send(c.token, chat.id, 'removed')).status).toBe(403);
    expect((await app.api.history(b.token, chat.id)).status).toBe(200);
  });
});

describe("the user's chat-id copy (connecting while PostgreSQL is down)", () => {
  const unavailable = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const postgresDown = (): ChatStore => ({ ...store, chatIdsOf: () => Promise.reject(unavailable()) });

  it('does not keep a chat the user left after the copy was read from PostgreSQL', async () => {
    const [owner, u] = await Promise.all([app.api.newUser('owner'), app.api.newUser('u')]);
    const kept = await app.api.newChat(owner, [u], 'kept');
    const left = await app.api.newChat(owner, [u], 'left');
    const { chatIndex } = compose(racing('chatIdsOf', () => leave(left.id, u)));
    expect(await chatIndex.chatIdsOf(u.user.id)).toContain(left.id); // read before the leave

    // The copy written after that read is what a connection gets while PostgreSQL is down.
    const fallback = await compose(postgresDown())
      .chatIndex.chatIdsOf(u.user.id)
      .catch(() => null);
    expect(fallback ?? []).not.toContain(left.id);

    // Without a race the copy is written, and answers while PostgreSQL is down.
    expect(await compose(store).chatIndex.chatIdsOf(u.user.id)).toEqual([kept.id]);
    await waitFor(() => env.redis.exists(keys().userChats(u.user.id)), 'the chat-id copy');
    expect(await compose(postgresDown()).chatIndex.chatIdsOf(u.user.id)).toEqual([kept.id]);
  });

  it('is dropped with the member sets once Redis is back (changes made meanwhile were not announced there)', async () => {
    const [owner, u] = await Promise.all([app.api.newUser('owner'), app.api.newUser('u')]);
    const chat = await app.api.newChat(owner, [u]);
    const { chatIndex, membership } = compose(store);
    await chatIndex.chatIdsOf(u.user.id);
    await membership.load(chat.id);
    await waitFor(() => env.redis.exists(keys().userChats(u.user.id)), 'the chat-id copy');
    await membership.dropCaches();
    expect(await env.redis.exists(keys().userChats(u.user.id), keys().members(chat.id))).toBe(0);
  });

  it('does not miss a chat the user was added to after the copy was read from PostgreSQL', async () => {
    const [owner, u] = await Promise.all([app.api.newUser('owner'), app.api.newUser('u')]);
    const chat = await app.api.newChat(owner, []);
    const { chatIndex } = compose(
      racing('chatIdsOf', async () => {
        expect(
          (await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: u.user.id }, owner.token)).status,
        ).toBe(201);
      }),
    );
    expect(await chatIndex.chatIdsOf(u.user.id)).toEqual([]);
    const fallback = await compose(postgresDown())
      .chatIndex.chatIdsOf(u.user.id)
      .catch(() => null);
    // No copy (the connection is refused as unavailable) rather than one without the chat.
    expect(fallback).toBeNull();
  });
});
