import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type TestSocket, upgradeStatus } from '../helpers/ws-client.js';

/**
 * Who may do what: a non-member gets 403 on every chat route and frame and learns nothing; a
 * revoked or expired token gets 401 on HTTP and on the upgrade, on every api process at once, and
 * its open sockets close with 4001; admin routes want the admin token; answers carry security
 * headers. Two api processes share one database and Redis.
 */
const ADMIN_TOKEN = 'admin-secret-for-tests-0123456789';
const SECRET_TITLE = 'secret-title-7f3a';
const SECRET_BODY = 'secret-body-91c2';

let env: TestEnv;
let one: InProcess;
let two: InProcess;
let owner: TestUser, member: TestUser, outsider: TestUser;
let chatId: string;

beforeAll(async () => {
  env = await createTestEnv();
  // The same deployment, but only process one was given an admin token.
  [one, two] = await Promise.all([
    startInProcess(env, { workers: false, overrides: { ADMIN_TOKEN } }),
    startInProcess(env, { workers: false }),
  ]);
  [owner, member, outsider] = await Promise.all([
    one.api.newUser('owner'),
    one.api.newUser('member'),
    one.api.newUser('outsider'),
  ]);
  chatId = (await one.api.newChat(owner, [member], SECRET_TITLE)).id;
  await one.api.send(owner.token, chatId, SECRET_BODY);
});
afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
  await env?.cleanup();
});

/** Nothing about the chat may appear in what an outsider gets back. */
function expectNothingLeaked(value: unknown): void {
  const text = JSON.stringify(value);
  for (const secret of [SECRET_TITLE, SECRET_BODY, owner.user.id, member.user.id]) expect(text).not.toContain(secret);
}

describe('a non-member', () => {
  const routes: [string, string, (() => unknown)?][] = [
    ['GET', '/api/chats/:chat'],
    ['POST', '/api/chats/:chat/members', () => ({ userId: outsider.user.id })],
    ['DELETE', '/api/chats/:chat/members/:member'],
    ['DELETE', '/api/chats/:chat/members/:outsider'],
    ['POST', '/api/chats/:chat/messages', () => ({ body: 'let me in', clientMsgId: 'intrude-1' })],
    ['GET', '/api/chats/:chat/messages'],
    ['GET', '/api/chats/:chat/messages?after=0&limit=200'],
    ['POST', '/api/chats/:chat/read', () => ({ seq: 1 })],
  ];

  it.each(routes)('gets 403 on %s %s and learns nothing', async (method, path, body) => {
    const real = path
      .replace(':chat', chatId)
      .replace(':member', member.user.id)
      .replace(':outsider', outsider.user.id);
    for (const app of [one, two]) {
      const r = await app.api.request(method, real, body?.(), outsider.token);
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 403, code: 'forbidden' });
      expect(Object.keys(r.body)).toEqual(['error']);
      expectNothingLeaked(r.body);
    }
  });

  it('does not see the chat in its list, and changed nothing', async () => {
    const list = await one.api.request('GET', '/api/chats', undefined, outsider.token);
    expect(list.body.chats).toEqual([]);
    const chat = await one.api.request('GET', `/api/chats/${chatId}`, undefined, owner.token);
    expect(chat.body.chat.members.map((m: { userId: string }) => m.userId).sort()).toEqual(
      [owner.user.id, member.user.id].sort(),
    );
    expect(chat.body.chat.lastSeq).toBe(1);
  });

  it('gets forbidden for every frame about the chat, and none of its events', async () => {
    const spy = await connectClient(two.url, outsider.token);
    const insider = await connectClient(one.url, member.token);

    spy.send({ type: 'send', chatId, body: 'let me in', clientMsgId: 'intrude-ws' });
    const refusedSend = await spy.next((f) => f.type === 'error' && f.clientMsgId === 'intrude-ws', 'refused send');
    spy.send({ type: 'sync', chats: { [chatId]: 0 } });
    await spy.next((f) => f.type === 'synced', 'synced');
    spy.send({ type: 'typing', chatId });
    spy.send({ type: 'read', chatId, seq: 1 });
    await spy.until((fs) => fs.filter((f) => f.type === 'error').length === 4, 'four refusals');
    const errors = spy.of('error');
    expect(refusedSend.code).toBe('forbidden');
    expect(errors.map((f) => f.code)).toEqual(['forbidden', 'forbidden', 'forbidden', 'forbidden']);
    expect(spy.of('message')).toEqual([]);

    // The members are busy; once the member has seen it all, the outsider would have too.
    const owners = await connectClient(two.url, owner.token);
    owners.send({ type: 'typing', chatId });
    owners.send({ type: 'send', chatId, body: SECRET_BODY, clientMsgId: 'busy-1' });
    await owners.next((f) => f.type === 'ack', 'ack');
    await insider.until((fs) => ['typing', 'message'].every((t) => fs.some((f) => f.type === t)), 'typing and message');
    insider.send({ type: 'read', chatId, seq: 2 });
    await owners.next((f) => f.type === 'read', 'read receipt');
    expect(spy.frames.filter((f) => !['ready', 'error', 'synced', 'presence'].includes(f.type))).toEqual([]);
    expectNothingLeaked(spy.frames.filter((f) => f.type !== 'ready'));
    expect(spy.ws.readyState).toBe(spy.ws.OPEN);
    await Promise.all([spy.close(), insider.close(), owners.close()]);
  });
});

describe('logout', () => {
  it('revokes the token on every api process at once and closes its sockets with 4001', async () => {
    const user = await one.api.newUser('leaver');
    const other = (
      await one.api.request('POST', '/api/sessions', {
        username: user.user.username,
        password: 'correct horse battery',
      })
    ).body.token as string;
    // Process two has the token cached from a request and holds a socket opened with it.
    expect((await two.api.request('GET', '/api/me', undefined, user.token)).status).toBe(200);
    const sockets: TestSocket[] = await Promise.all([
      connectClient(one.url, user.token),
      connectClient(two.url, user.token),
      connectClient(two.url, user.token, { viaProtocol: true }),
    ]);
    const survivor = await connectClient(two.url, other);

    const out = await one.api.request('DELETE', '/api/sessions/current', undefined, user.token);
    expect(out.status).toBe(204);
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([4001, 4001, 4001]);

    for (const app of [one, two]) {
      const r = await app.api.request('GET', '/api/me', undefined, user.token);
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 401, code: 'unauthorized' });
      expect(await upgradeStatus(app.url, user.token)).toBe(401);
    }
    expect((await one.api.request('DELETE', '/api/sessions/current', undefined, user.token)).status).toBe(401);
    // The user's other session is untouched.
    expect((await two.api.request('GET', '/api/me', undefined, other)).status).toBe(200);
    survivor.send({ type: 'ping', ref: 'still-here' });
    await survivor.next((f) => f.type === 'pong' && f.ref === 'still-here', 'pong on the other session');
    await survivor.close();
  });
});

describe('token expiry', () => {
  const expire = (userId: string, interval: string) =>
    env.pool.query(`UPDATE sessions SET expires_at = now() + $2::interval WHERE user_id = $1`, [userId, interval]);

  it('refuses an expired token on HTTP and on the upgrade', async () => {
    const user = await one.api.newUser('expired');
    await expire(user.user.id, '-1 second');
    for (const app of [one, two]) {
      expect((await app.api.request('GET', '/api/me', undefined, user.token)).status).toBe(401);
      expect(await upgradeStatus(app.url, user.token)).toBe(401);
    }
  });

  it('closes a socket when its token expires, and the auth cache does not outlive the token', async () => {
    const user = await one.api.newUser('expiring');
    await expire(user.user.id, '1.5 seconds');
    // Both uses put the session in process one's cache (trusted for 30 s, but never past expiry).
    expect((await one.api.request('GET', '/api/me', undefined, user.token)).status).toBe(200);
    const s = await connectClient(one.url, user.token);
    expect(await s.closed).toBe(4001);
    expect((await one.api.request('GET', '/api/me', undefined, user.token)).status).toBe(401);
    expect(await upgradeStatus(one.url, user.token)).toBe(401);
  });
});

describe('admin routes', () => {
  const routes: [string, string, unknown?][] = [
    ['POST', '/api/admin/broadcast', { event: 'maintenance', data: { in: '5m' } }],
    ['GET', '/admin/persistence-lag'],
  ];

  it.each(routes)('%s %s wants the admin token', async (method, path, body) => {
    for (const token of [undefined, owner.token, 'wrong-admin-token']) {
      const r = await one.api.request(method, path, body, token);
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 401, code: 'unauthorized' });
    }
    const ok = await one.api.request(method, path, body, ADMIN_TOKEN);
    expect(ok.status).toBeLessThan(300);
    // Without a configured admin token there is no admin at all.
    const none = await two.api.request(method, path, body, ADMIN_TOKEN);
    expect({ status: none.status, code: none.body.error.code }).toEqual({ status: 403, code: 'forbidden' });
  });
});

describe('HTTP answers', () => {
  it('carry security headers, errors included, and API answers are never cached', async () => {
    const answers = await Promise.all([
      fetch(`${one.url}/healthz`),
      fetch(`${one.url}/api/me`, { headers: { authorization: `Bearer ${owner.token}` } }),
      fetch(`${one.url}/api/me`),
      fetch(`${one.url}/api/nothing`, { headers: { authorization: `Bearer ${owner.token}` } }),
      fetch(`${one.url}/api/chats`, {
        method: 'POST',
        headers: { authorization: `Bearer ${owner.token}` },
        body: 'not json',
      }),
    ]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 401, 404, 400]);
    for (const r of answers) {
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      expect(r.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(r.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(r.headers.get('x-powered-by')).toBeNull();
    }
    for (const r of answers.slice(1)) expect(r.headers.get('cache-control')).toBe('no-store');
    await Promise.all(answers.map((r) => r.body?.cancel()));
  });
});
