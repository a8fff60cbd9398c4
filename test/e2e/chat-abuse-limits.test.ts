import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type JsonBody, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

/**
 * Chat-list bombing: nobody may force a user into unbounded chats. Per user and across api
 * processes, chats created (CHATS_CREATED_PER_MIN) and members added (MEMBER_ADDS_PER_MIN, a new
 * chat's memberIds included) are limited: 429 rate_limited with Retry-After. A user in
 * CHATS_PER_USER_MAX chats cannot be added to another (409 conflict). Leaving always works.
 */
const CREATED = 3;
const ADDS = 4;
const CAP = 3;

let env: TestEnv;
let procs: RunningProcess[] = [];
let one: ApiClient, two: ApiClient;

beforeAll(async () => {
  env = await createTestEnv({
    CHATS_CREATED_PER_MIN: String(CREATED),
    MEMBER_ADDS_PER_MIN: String(ADDS),
    CHATS_PER_USER_MAX: String(CAP),
  });
  procs = await Promise.all([startApiProcess(env.env), startApiProcess(env.env)]);
  [one, two] = procs.map((p) => new ApiClient(p.url)) as [ApiClient, ApiClient];
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await env?.cleanup();
});

/** A POST with its Retry-After header (the test client gives status and body only). */
async function post(api: ApiClient, path: string, body: unknown, user: TestUser) {
  const res = await fetch(api.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json().catch(() => null)) as JsonBody,
  };
}
const createChat = (api: ApiClient, owner: TestUser, members: TestUser[]) =>
  post(api, '/api/chats', { title: 'x', memberIds: members.map((m) => m.user.id) }, owner);
const addMember = (api: ApiClient, actor: TestUser, chatId: string, user: TestUser) =>
  post(api, `/api/chats/${chatId}/members`, { userId: user.user.id }, actor);
const leave = (api: ApiClient, user: TestUser, chatId: string) =>
  api.request('DELETE', `/api/chats/${chatId}/members/${user.user.id}`, undefined, user.token);
const users = (n: number, name: string) =>
  Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? two : one).newUser(name)));

function expectRateLimited(r: Awaited<ReturnType<typeof post>>) {
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe('rate_limited');
  expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
}
const count = async (sql: string, id: string) => (await env.pool.query<{ n: number }>(sql, [id])).rows[0]!.n;
const chatsCreatedBy = (userId: string) => count('SELECT count(*)::int AS n FROM chats WHERE created_by = $1', userId);
const chatsOf = (userId: string) => count('SELECT count(*)::int AS n FROM chat_members WHERE user_id = $1', userId);

describe('chats created per user', () => {
  it('holds across api processes, and counts nothing it refused', async () => {
    const [u, v] = await users(2, 'creator');
    for (let i = 0; i < CREATED; i++) expect((await createChat(i % 2 ? two : one, u!, [])).status).toBe(201);
    expectRateLimited(await createChat(one, u!, []));
    expectRateLimited(await createChat(two, u!, []));
    expect(await chatsCreatedBy(u!.user.id)).toBe(CREATED);
    // Per user: another one is not held back by u.
    expect((await createChat(two, v!, [])).status).toBe(201);
  });
});

describe('members added per user', () => {
  it('holds across api processes, a new chat memberIds included', async () => {
    const [w, ...xs] = await users(ADDS + 2, 'adder');
    const created = await createChat(one, w!, [xs[0]!]); // one add
    expect(created.status).toBe(201);
    const chatId = created.body.chat.id as string;
    for (let i = 1; i < ADDS; i++) expect((await addMember(i % 2 ? two : one, w!, chatId, xs[i]!)).status).toBe(201);
    expectRateLimited(await addMember(two, w!, chatId, xs[ADDS]!));
    expectRateLimited(await addMember(one, w!, chatId, xs[ADDS]!));
    expect(await count('SELECT count(*)::int AS n FROM chat_members WHERE chat_id = $1', chatId)).toBe(ADDS + 1);

    // Whom w may no longer add, another member still may.
    expect((await addMember(two, xs[0]!, chatId, xs[ADDS]!)).status).toBe(201);
  });

  it('refuses a new chat naming more members than the user may still add, and creates nothing', async () => {
    const [y, ...zs] = await users(ADDS + 2, 'bulk');
    expectRateLimited(await createChat(two, y!, zs)); // ADDS + 1 members at once
    expect(await chatsCreatedBy(y!.user.id)).toBe(0);
    expect((await createChat(one, y!, zs.slice(0, ADDS))).status).toBe(201);
    expectRateLimited(await createChat(two, y!, zs.slice(0, 1)));
  });
});

describe('chats per user', () => {
  it('refuses to add a user in CHATS_PER_USER_MAX chats to another, by creation or by an add', async () => {
    const [victim, ...owners] = await users(CAP + 3, 'cap');
    for (let i = 0; i < CAP; i++) expect((await createChat(i % 2 ? two : one, owners[i]!, [victim!])).status).toBe(201);

    const byCreation = await createChat(one, owners[CAP]!, [victim!]);
    expect(byCreation).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
    expect(await chatsCreatedBy(owners[CAP]!.user.id)).toBe(0);

    const other = await createChat(two, owners[CAP + 1]!, []);
    expect(other.status).toBe(201);
    expect(await addMember(one, owners[CAP + 1]!, other.body.chat.id, victim!)).toMatchObject({
      status: 409,
      body: { error: { code: 'conflict' } },
    });
    // Nor may they create one more themselves.
    expect(await createChat(two, victim!, [])).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });

    expect(await chatsOf(victim!.user.id)).toBe(CAP);
    const list = await one.request('GET', '/api/chats', undefined, victim!.token);
    expect(list.body.chats).toHaveLength(CAP);

    // Leaving makes room again.
    expect((await leave(two, victim!, list.body.chats[0].id)).status).toBe(204);
    expect((await addMember(two, owners[CAP + 1]!, other.body.chat.id, victim!)).status).toBe(201);
  });
});

describe('leaving', () => {
  it('always works: at the chat cap, and past every rate limit', async () => {
    const [u, ...others] = await users(ADDS + 1, 'leaver');
    const chatIds: string[] = [];
    for (let i = 0; i < CREATED; i++) {
      const r = await createChat(i % 2 ? two : one, u!, i === 0 ? [others[0]!] : []);
      expect(r.status).toBe(201);
      chatIds.push(r.body.chat.id);
    }
    // u is at the cap, out of chat creations, and out of adds once these are spent.
    for (let i = 1; i < ADDS; i++) expect((await addMember(one, u!, chatIds[0]!, others[i]!)).status).toBe(201);
    expectRateLimited(await createChat(one, u!, []));
    expectRateLimited(await addMember(two, u!, chatIds[1]!, others[0]!));
    expect(await chatsOf(u!.user.id)).toBe(CAP);

    for (const [i, chatId] of chatIds.entries()) expect((await leave(i % 2 ? one : two, u!, chatId)).status).toBe(204);
    expect(await chatsOf(u!.user.id)).toBe(0);
    expect((await one.request('GET', '/api/chats', undefined, u!.token)).body.chats).toEqual([]);
  });
});
