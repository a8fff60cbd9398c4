import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

/**
 * Parallel member adds must stop exactly at the limits: CHAT_MAX_MEMBERS per chat, and
 * CHATS_PER_USER_MAX per user. Counting and inserting are one step under row locks; were they two,
 * adds that all counted before any inserted would all pass.
 */
const MAX_MEMBERS = 6;
const MAX_CHATS = 4;
const PARALLEL = 24;

let env: TestEnv;
let app: InProcess;

beforeAll(async () => {
  env = await createTestEnv({
    CHAT_MAX_MEMBERS: String(MAX_MEMBERS),
    CHATS_PER_USER_MAX: String(MAX_CHATS),
    PG_POOL_MAX: '20',
  });
  app = await startInProcess(env, { workers: false });
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

const users = (n: number, name: string) => Promise.all(Array.from({ length: n }, () => app.api.newUser(name)));
const add = (actor: TestUser, chatId: string, userId: string) =>
  app.api.request('POST', `/api/chats/${chatId}/members`, { userId }, actor.token);
const count = async (sql: string, id: string) => (await env.pool.query<{ n: number }>(sql, [id])).rows[0]!.n;
const membersOf = (chatId: string) => count('SELECT count(*)::int AS n FROM chat_members WHERE chat_id = $1', chatId);
const chatsOf = (userId: string) => count('SELECT count(*)::int AS n FROM chat_members WHERE user_id = $1', userId);

describe('parallel member adds', () => {
  it.each([1, 3])('to a chat %i below its cap reach exactly the cap', async (room) => {
    const [owner, ...rest] = await users(MAX_MEMBERS - room, 'm');
    const chat = await app.api.newChat(owner!, rest);
    const joiners = await users(PARALLEL, 'j');

    const replies = await Promise.all(joiners.map((j) => add(owner!, chat.id, j.user.id)));

    expect(replies.filter((r) => r.status === 201)).toHaveLength(room);
    for (const r of replies.filter((x) => x.status !== 201))
      expect(r).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
    expect(await membersOf(chat.id)).toBe(MAX_MEMBERS);
    const listed = await app.api.request('GET', `/api/chats/${chat.id}`, undefined, owner!.token);
    expect(listed.body.chat.members).toHaveLength(MAX_MEMBERS);
  });

  it('of one user to many chats stop at CHATS_PER_USER_MAX', async () => {
    const [victim] = await users(1, 'v');
    const first = await users(MAX_CHATS - 1, 'o');
    for (const o of first) await app.api.newChat(o, [victim!]);
    const owners = await users(PARALLEL, 'o');
    const chats = await Promise.all(owners.map((o) => app.api.newChat(o, [])));

    const replies = await Promise.all(owners.map((o, i) => add(o, chats[i]!.id, victim!.user.id)));

    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of replies.filter((x) => x.status !== 201))
      expect(r).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
    expect(await chatsOf(victim!.user.id)).toBe(MAX_CHATS);
  });
});
