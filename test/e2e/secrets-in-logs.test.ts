import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, upgradeStatus } from '../helpers/ws-client.js';

/**
 * A real api process logging at its most verbose while it is handed passwords, tokens (in headers,
 * in ?token= and in the subprotocol), wrong tokens, JWTs and their secret, the admin token and Bull Board credentials:
 * none of them may appear in anything it prints.
 */
const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;
const ADMIN_TOKEN = secret('admintoken');
const BOARD_PASSWORD = secret('boardpw');
const JWT_SECRET = secret('jwtsecret-of-32-characters-or-more');
/** An HS256 token of an external user, signed with `key`. */
const jwt = (sub: string, key: string) =>
  new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(key));

let env: TestEnv;
let proc: RunningProcess;

beforeAll(async () => {
  env = await createTestEnv();
  proc = await startApiProcess({
    ...env.env,
    LOG_LEVEL: 'trace',
    ADMIN_TOKEN,
    BULL_BOARD_PASSWORD: BOARD_PASSWORD,
    JWT_SECRET,
  });
});
afterAll(async () => {
  await proc?.kill('SIGTERM');
  await env?.cleanup();
});

describe('logs', () => {
  it('never contain a password, a token or a credential', async () => {
    const api = new ApiClient(proc.url);
    const password = secret('password');
    const username = `logger_${randomBytes(4).toString('hex')}`;
    expect((await api.request('POST', '/api/users', { username, password })).status).toBe(201);
    const wrongPassword = secret('wrongpw');
    expect((await api.request('POST', '/api/sessions', { username, password: wrongPassword })).status).toBe(401);
    const t1 = (await api.request('POST', '/api/sessions', { username, password })).body.token as string;
    const t2 = (await api.request('POST', '/api/sessions', { username, password })).body.token as string;
    const fake = secret('faketoken');

    expect((await api.request('GET', '/api/me', undefined, t1)).status).toBe(200);
    expect((await api.request('GET', '/api/me', undefined, fake)).status).toBe(401);
    expect((await api.request('POST', '/api/chats', '{"broken', t1)).status).toBe(400);
    expect(await upgradeStatus(proc.url, fake)).toBe(401);
    const viaQuery = await connectClient(proc.url, t1);
    const viaProtocol = await connectClient(proc.url, t2, { viaProtocol: true });
    viaQuery.send('not json');
    await viaQuery.next((f) => f.type === 'error', 'error frame');
    await viaProtocol.close();

    expect((await api.request('POST', '/api/admin/broadcast', { event: 'x' }, fake)).status).toBe(401);
    expect((await api.request('POST', '/api/admin/broadcast', { event: 'x' }, ADMIN_TOKEN)).status).toBeLessThan(300);
    const basic = Buffer.from(`admin:${BOARD_PASSWORD}`).toString('base64');
    await api.request('GET', '/admin/queues', undefined, undefined, { authorization: `Basic ${basic}` });
    await api.request('GET', '/admin/queues', undefined, undefined, {
      authorization: `Basic ${Buffer.from(`admin:${fake}`).toString('base64')}`,
    });

    // External identity: a good JWT over HTTP and WS, one signed with another key.
    const external = await jwt(`app-user:${randomBytes(4).toString('hex')}`, JWT_SECRET);
    const forged = await jwt('app-user:forged', secret('otherkey-of-32-characters-or-more'));
    expect((await api.request('GET', '/api/me', undefined, external)).status).toBe(200);
    expect((await api.request('GET', '/api/me', undefined, forged)).status).toBe(401);
    expect(await upgradeStatus(proc.url, forged)).toBe(401);
    await (await connectClient(proc.url, external, { viaProtocol: true })).close();

    expect((await api.request('DELETE', '/api/sessions/current', undefined, t1)).status).toBe(204);
    expect(await viaQuery.closed).toBe(4001);
    expect(await proc.kill('SIGTERM')).toBe(0);

    const out = proc.output();
    // It did log (one line per request at least), so the check below is not vacuous.
    expect(out.split('\n').filter((l) => l.includes('"msg"')).length).toBeGreaterThan(10);
    for (const s of [
      password,
      wrongPassword,
      t1,
      t2,
      fake,
      ADMIN_TOKEN,
      BOARD_PASSWORD,
      basic,
      JWT_SECRET,
      external,
      forged,
    ])
      expect(out).not.toContain(s);
  });
});
