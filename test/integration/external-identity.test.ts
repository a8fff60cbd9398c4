import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, upgradeStatus } from '../helpers/ws-client.js';

/**
 * External identity (docs/protocol.md "External identity"): JWTs signed HS256 with JWT_SECRET, or
 * RS256/ES256 with a key of the JWKS at JWT_JWKS_URL (a real HTTP server here, on port 0), are
 * accepted wherever a session token is, on HTTP and on the upgrade; every wrong token gets 401; a
 * new `kid` is fetched; the `sub` is a user id (not a UUID) that chats like any other; the token's
 * `exp` closes its sockets with 4001.
 */
const SECRET = 'jwt-secret-for-tests-0123456789abcdef';
const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'parley-tests';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let env: TestEnv;
let app: InProcess;
let jwks: Server;
let published: JWK[] = [];
let jwksFetches = 0;
let rsa: KeyPair, ec: KeyPair, rotated: KeyPair, stranger: KeyPair;
let local: TestUser;

const now = () => Math.floor(Date.now() / 1000);
let subCounter = 0;
const freshSub = (prefix = 'app-user') => `${prefix}:${process.pid}-${++subCounter}-${Date.now() % 100_000}`;

interface Claims {
  sub?: string;
  iss?: string;
  aud?: string;
  exp?: number;
  preferred_username?: string;
}

function claims(over: Claims = {}): Claims {
  return { iss: ISSUER, aud: AUDIENCE, exp: now() + 600, ...over };
}

async function sign(
  c: Claims,
  key: Parameters<SignJWT['sign']>[0],
  header: { alg: string; kid?: string } = { alg: 'HS256' },
): Promise<string> {
  const jwt = new SignJWT({ ...c }).setProtectedHeader(header).setIssuedAt();
  return jwt.sign(key);
}
const hs = (c: Claims, secret = SECRET) => sign(c, new TextEncoder().encode(secret));
const rs = (c: Claims, key = rsa.privateKey, kid = 'rsa-1') => sign(c, key, { alg: 'RS256', kid });

async function publicJwk(pair: KeyPair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
}

const me = (token: string) => app.api.request('GET', '/api/me', undefined, token);

beforeAll(async () => {
  [rsa, ec, rotated, stranger] = await Promise.all([
    generateKeyPair('RS256', { extractable: true }),
    generateKeyPair('ES256', { extractable: true }),
    generateKeyPair('RS256', { extractable: true }),
    generateKeyPair('RS256', { extractable: true }),
  ]);
  published = [await publicJwk(rsa, 'rsa-1', 'RS256'), await publicJwk(ec, 'ec-1', 'ES256')];
  jwks = createServer((req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  const { port } = jwks.address() as AddressInfo;
  env = await createTestEnv({
    JWT_SECRET: SECRET,
    JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_CLOCK_TOLERANCE_S: '0',
    JWT_JWKS_COOLDOWN_MS: '0',
  });
  app = await startInProcess(env, { workers: true });
  local = await app.api.newUser('local');
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
  await new Promise((resolve) => jwks?.close(resolve));
});

describe('accepted tokens', () => {
  it.each([
    ['HS256 (JWT_SECRET)', () => hs(claims({ sub: freshSub(), preferred_username: `hs_${Date.now()}` }))],
    ['RS256 (JWKS)', () => rs(claims({ sub: freshSub() }))],
    ['ES256 (JWKS)', () => sign(claims({ sub: freshSub() }), ec.privateKey, { alg: 'ES256', kid: 'ec-1' })],
  ])('%s works on HTTP and on the upgrade (query and subprotocol)', async (_name, make) => {
    const token = await make();
    const r = await me(token);
    expect(r.status).toBe(200);
    const user = r.body.user;
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Claims;
    expect(user.id).toBe(payload.sub);
    expect(user.username).toBe(payload.preferred_username ?? payload.sub);
    for (const viaProtocol of [false, true]) {
      const s = await connectClient(app.url, token, { viaProtocol });
      expect(s.of('ready')[0]?.user).toEqual(user);
      await s.close();
    }
  });

  it('creates one user for concurrent first uses of one sub', async () => {
    const sub = freshSub();
    const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => hs(claims({ sub, exp: now() + 600 + i }))));
    const answers = await Promise.all(tokens.map(me));
    expect(answers.map((a) => a.status)).toEqual(tokens.map(() => 200));
    expect(new Set(answers.map((a) => a.body.user.id))).toEqual(new Set([sub]));
    const rows = await env.pool.query('SELECT id FROM users WHERE id = $1', [sub]);
    expect(rows.rowCount).toBe(1);
  });

  it('gives a user whose preferred_username is taken by a local user another name', async () => {
    const sub = freshSub();
    const r = await me(await hs(claims({ sub, preferred_username: local.user.username.toUpperCase() })));
    expect(r.status).toBe(200);
    expect(r.body.user.id).toBe(sub);
    expect(r.body.user.username).toBe(sub);
    // The local user is untouched and still logs in with the password.
    const login = await app.api.request('POST', '/api/sessions', {
      username: local.user.username,
      password: 'correct horse battery',
    });
    expect(login.body.user.id).toBe(local.user.id);
    // And the JWT user has no password to log in with.
    const noPassword = await app.api.request('POST', '/api/sessions', { username: sub, password: 'external' });
    expect(noPassword.status).toBe(401);
  });

  it('fetches the JWKS again when a token names a new kid (key rotation)', async () => {
    const before = jwksFetches;
    const token = await rs(claims({ sub: freshSub() }), rotated.privateKey, 'rsa-2');
    // Not published yet: refused, after one fetch found no such key.
    expect((await me(token)).status).toBe(401);
    expect(jwksFetches).toBeGreaterThan(before);
    published = [...published, await publicJwk(rotated, 'rsa-2', 'RS256')];
    const fetched = jwksFetches;
    expect((await me(await rs(claims({ sub: freshSub() }), rotated.privateKey, 'rsa-2'))).status).toBe(200);
    expect(jwksFetches).toBe(fetched + 1);
    // Known kids come from the cache.
    expect((await me(await rs(claims({ sub: freshSub() })))).status).toBe(200);
    expect(jwksFetches).toBe(fetched + 1);
  });
});

describe('refused tokens', () => {
  const cases: [string, () => Promise<string>][] = [
    ['expired', () => hs(claims({ sub: freshSub(), exp: now() - 10 }))],
    ['expired (RS256)', () => rs(claims({ sub: freshSub(), exp: now() - 10 }))],
    ['from another issuer', () => hs(claims({ sub: freshSub(), iss: 'https://evil.example.test' }))],
    ['for another audience', () => rs(claims({ sub: freshSub(), aud: 'someone-else' }))],
    ['signed with another secret', () => hs(claims({ sub: freshSub() }), 'another-secret-of-at-least-32-characters')],
    ['signed with a key not in the JWKS (known kid)', () => rs(claims({ sub: freshSub() }), stranger.privateKey)],
    [
      'signed with a key not in the JWKS (unknown kid)',
      () => rs(claims({ sub: freshSub() }), stranger.privateKey, 'x'),
    ],
    ['alg: none', async () => new UnsecuredJWT({ ...claims({ sub: freshSub() }) }).encode()],
    [
      'alg: none with a signature part',
      async () => `${new UnsecuredJWT({ ...claims({ sub: freshSub() }) }).encode()}c2ln`,
    ],
    [
      'HS384 with the right secret',
      () => sign(claims({ sub: freshSub() }), new TextEncoder().encode(SECRET), { alg: 'HS384' }),
    ],
    ['without exp', () => hs({ iss: ISSUER, aud: AUDIENCE, sub: freshSub() })],
    ['without sub', () => hs(claims())],
    ['whose sub holds a /', () => hs(claims({ sub: 'tenant/42' }))],
    ['whose sub holds a control character', () => hs(claims({ sub: 'two\u0007words' }))],
    ['whose sub is 256 characters', () => hs(claims({ sub: 'x'.repeat(256) }))],
    ['whose sub names a local user (one with a password)', () => hs(claims({ sub: local.user.id }))],
    [
      'with a tampered payload',
      async () => {
        const [h, , s] = (await hs(claims({ sub: freshSub() }))).split('.');
        const forged = Buffer.from(JSON.stringify(claims({ sub: local.user.id }))).toString('base64url');
        return `${h}.${forged}.${s}`;
      },
    ],
  ];

  it.each(cases)('%s: 401 on HTTP and on the upgrade', async (_name, make) => {
    const token = await make();
    const r = await me(token);
    expect({ status: r.status, code: r.body.error?.code }).toEqual({ status: 401, code: 'unauthorized' });
    expect(await upgradeStatus(app.url, token)).toBe(401);
  });

  it('leaves Parley session tokens as they were: still accepted, and a JWT-looking junk token is refused', async () => {
    expect((await me(local.token)).status).toBe(200);
    expect((await me(`${local.token}.${local.token}.${local.token}`)).status).toBe(401);
    expect((await me('a.b.c')).status).toBe(401);
  });
});

describe('a JWT user with a non-UUID id', () => {
  it('creates chats, is added by its id, sends and receives messages, typing and reads', async () => {
    // Quotes, backslashes and spaces too: ids are opaque, and frames and payloads built by hand must encode them.
    const aliceId = freshSub('app-user');
    const bobId = `app "user\\ ${subCounter++}`;
    const alice = await hs(claims({ sub: aliceId, preferred_username: `alice_${Date.now()}` }));
    const bob = await rs(claims({ sub: bobId }));
    expect((await me(bob)).status).toBe(200); // bob exists from first use

    // Alice (created by this very request) makes a chat with bob by his id, and the local user.
    const created = await app.api.request('POST', '/api/chats', { title: 'external', memberIds: [bobId] }, alice);
    expect(created.status).toBe(201);
    const chatId = created.body.chat.id as string;
    expect(created.body.chat.createdBy).toBe(aliceId);
    // The local user's own chat, to which the local user adds alice by her id.
    const theirs = await app.api.newChat(local, []);
    const added = await app.api.request('POST', `/api/chats/${theirs.id}/members`, { userId: aliceId }, local.token);
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ chatId: theirs.id, userId: aliceId });
    const members = await app.api.request('GET', `/api/chats/${theirs.id}`, undefined, local.token);
    expect(members.body.chat.members.map((m: { userId: string }) => m.userId).sort()).toEqual(
      [aliceId, local.user.id].sort(),
    );

    const as = await connectClient(app.url, alice);
    const bs = await connectClient(app.url, bob, { viaProtocol: true });
    as.send({ type: 'send', chatId, body: 'hello bob', clientMsgId: 'a-1' });
    const toBob = await bs.next((f) => f.type === 'message', 'alice’s message');
    expect(toBob.message).toMatchObject({ chatId, senderId: aliceId, body: 'hello bob', seq: 1 });
    bs.send({ type: 'read', chatId, seq: 1 });
    expect(await as.next((f) => f.type === 'read', 'bob’s read')).toEqual({
      type: 'read',
      chatId,
      userId: bobId,
      seq: 1,
    });
    bs.send({ type: 'send', chatId, body: 'hi alice', clientMsgId: 'b-1' });
    const toAlice = await as.next((f) => f.type === 'message' && (f.message as { seq: number }).seq === 2, 'bob’s');
    expect(toAlice.message).toMatchObject({ senderId: bobId, body: 'hi alice' });
    bs.send({ type: 'typing', chatId });
    expect(await as.next((f) => f.type === 'typing', 'bob typing')).toEqual({ type: 'typing', chatId, userId: bobId });

    // By HTTP, in the local user's chat, and the member routes that name the user in the path.
    expect((await app.api.send(alice, theirs.id, 'from alice over HTTP')).status).toBe(201);
    const history = await app.api.history(local.token, theirs.id);
    expect(history.body.messages.map((m) => m.body)).toEqual(['from alice over HTTP']);
    const presence = await app.api.request('GET', `/api/users/${encodeURIComponent(bobId)}/presence`, undefined, alice);
    expect(presence.status).toBe(200);
    expect(presence.body.status).toBe('online');
    const removed = await app.api.request(
      'DELETE',
      `/api/chats/${chatId}/members/${encodeURIComponent(bobId)}`,
      undefined,
      alice,
    );
    expect(removed.status).toBe(204);
    const chats = await app.api.request('GET', '/api/chats', undefined, bob);
    expect(chats.body.chats.map((c: { id: string }) => c.id)).not.toContain(chatId);
    await Promise.all([as.close(), bs.close()]);
  });

  it('keeps ids that are not user ids out: member and presence routes answer 400', async () => {
    const chat = await app.api.newChat(local, []);
    for (const userId of ['', 'a/b', 'x'.repeat(256), 'with\u0007bell', 'line\nbreak', 42]) {
      const r = await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId }, local.token);
      expect({ userId, status: r.status }).toEqual({ userId, status: 400 });
    }
    const bad = await app.api.request('GET', '/api/users/with%07bell/presence', undefined, local.token);
    expect(bad.status).toBe(400);
    // A user id nobody has is a 404, as before.
    const ghost = await app.api.request('POST', `/api/chats/${chat.id}/members`, { userId: 'nobody:1' }, local.token);
    expect(ghost.status).toBe(404);
  });
});

describe('logout with a JWT', () => {
  it('closes the sockets opened with it (4001), and the token stays valid until its exp', async () => {
    const token = await hs(claims({ sub: freshSub() }));
    const [s, other] = await Promise.all([
      connectClient(app.url, token),
      connectClient(app.url, await hs(claims({ sub: freshSub() }))),
    ]);
    expect((await app.api.request('DELETE', '/api/sessions/current', undefined, token)).status).toBe(204);
    expect(await s.closed).toBe(4001);
    expect((await me(token)).status).toBe(200);
    const again = await connectClient(app.url, token);
    again.send({ type: 'ping', ref: 'after-logout' });
    await again.next((f) => f.type === 'pong', 'pong after logout');
    expect(other.ws.readyState).toBe(other.ws.OPEN);
    await Promise.all([again.close(), other.close()]);
  });
});

describe('expiry', () => {
  it('closes the sockets opened with a JWT with 4001 when its exp passes, then refuses it', async () => {
    const token = await hs(claims({ sub: freshSub(), exp: now() + 2 }));
    expect((await me(token)).status).toBe(200);
    const sockets = await Promise.all([
      connectClient(app.url, token),
      connectClient(app.url, token, { viaProtocol: true }),
    ]);
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([4001, 4001]);
    expect((await me(token)).status).toBe(401);
    expect(await upgradeStatus(app.url, token)).toBe(401);
  });
});
