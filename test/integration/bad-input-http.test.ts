import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECTIONS, LONE_SURROGATE, ODD_TEXT, postChunked, UNKNOWN_ID } from '../helpers/hostile-input.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient } from '../helpers/ws-client.js';

/**
 * Every HTTP route against malformed, mistyped, oversized, odd and hostile input: each answer is
 * the contract's exact status and code, and the server keeps serving everyone afterwards.
 */
const MAX_CHARS = 100;
const MAX_MEMBERS = 4;
const BODY_MAX = 4096;

let env: TestEnv;
let app: InProcess;
let a: TestUser, b: TestUser, c: TestUser;
let chatId: string;

beforeAll(async () => {
  env = await createTestEnv({
    MESSAGE_MAX_CHARS: String(MAX_CHARS),
    CHAT_MAX_MEMBERS: String(MAX_MEMBERS),
    HTTP_BODY_MAX: String(BODY_MAX),
  });
  app = await startInProcess(env, { workers: false });
  [a, b, c] = await Promise.all([app.api.newUser('a'), app.api.newUser('b'), app.api.newUser('c')]);
  chatId = (await app.api.newChat(a, [b])).id;
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

type Who = 'a' | 'none' | string;
interface Case {
  name: string;
  method: string;
  /** `:chat` is replaced by a chat of a and b, `:a` by a's id. */
  path: string;
  /** A string is sent as is (raw JSON text); anything else is JSON-encoded. */
  body?: unknown;
  who?: Who;
  status: number;
  code: string;
}

const big = (n: number) => 'x'.repeat(n);
const V = 'validation_failed';

const cases: Case[] = [
  // POST /api/users
  ...(
    [
      ['malformed JSON', '{"username":'],
      ['an empty body', ''],
      ['an array', '[]'],
      ['a number', '42'],
      ['null', 'null'],
      ['a bare string', '"alice"'],
      ['a missing password', { username: 'zed_1' }],
      ['a numeric username', { username: 5, password: 'long enough pw' }],
      ['an injection username', { username: "x'; DROP TABLE users;--", password: 'long enough pw' }],
      ['a lone surrogate username', { username: `ab${LONE_SURROGATE}c`, password: 'long enough pw' }],
      ['a short password', { username: 'zed_2', password: 'short' }],
      ['a huge password', { username: 'zed_3', password: big(201) }],
      ['a NUL in displayName', { username: 'zed_4', password: 'long enough pw', displayName: 'a\u0000b' }],
      [
        'a lone surrogate displayName',
        { username: 'zed_5', password: 'long enough pw', displayName: `x${LONE_SURROGATE}` },
      ],
      ['a blank displayName', { username: 'zed_6', password: 'long enough pw', displayName: ' \t ' }],
      ['a long displayName', { username: 'zed_7', password: 'long enough pw', displayName: big(65) }],
      ['an object displayName', { username: 'zed_8', password: 'long enough pw', displayName: { x: 1 } }],
    ] as const
  ).map(([name, body]) => ({
    name: `register with ${name}`,
    method: 'POST',
    path: '/api/users',
    body,
    who: 'none',
    status: 400,
    code: V,
  })),
  {
    name: 'register over the body limit',
    method: 'POST',
    path: '/api/users',
    body: { username: 'zed_9', password: big(BODY_MAX) },
    who: 'none',
    status: 413,
    code: 'payload_too_large',
  },

  // POST /api/sessions
  {
    name: 'login with malformed JSON',
    method: 'POST',
    path: '/api/sessions',
    body: '{',
    who: 'none',
    status: 400,
    code: V,
  },
  {
    name: 'login with a NUL username',
    method: 'POST',
    path: '/api/sessions',
    body: { username: 'a\u0000', password: 'x' },
    who: 'none',
    status: 400,
    code: V,
  },
  {
    name: 'login with a lone surrogate username',
    method: 'POST',
    path: '/api/sessions',
    body: { username: LONE_SURROGATE, password: 'x' },
    who: 'none',
    status: 400,
    code: V,
  },
  {
    name: 'login with a numeric password',
    method: 'POST',
    path: '/api/sessions',
    body: { username: 'abc', password: 12345678 },
    who: 'none',
    status: 400,
    code: V,
  },
  {
    name: 'login with an injection username',
    method: 'POST',
    path: '/api/sessions',
    body: { username: "' OR '1'='1", password: "' OR '1'='1" },
    who: 'none',
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'login over the body limit',
    method: 'POST',
    path: '/api/sessions',
    body: { username: 'abc', password: big(BODY_MAX) },
    who: 'none',
    status: 413,
    code: 'payload_too_large',
  },

  // Tokens
  { name: 'me without a token', method: 'GET', path: '/api/me', who: 'none', status: 401, code: 'unauthorized' },
  {
    name: 'me with a garbage token',
    method: 'GET',
    path: '/api/me',
    who: 'garbage',
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'me with a 500-character token',
    method: 'GET',
    path: '/api/me',
    who: big(500),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'me with an injection token',
    method: 'GET',
    path: '/api/me',
    who: "'%20OR%201=1--",
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'logout without a token',
    method: 'DELETE',
    path: '/api/sessions/current',
    who: 'none',
    status: 401,
    code: 'unauthorized',
  },

  // POST /api/chats
  ...(
    [
      ['malformed JSON', '{"memberIds": [', 400, V],
      ['an array', '[]', 400, V],
      ['memberIds as a string', { memberIds: 'x' }, 400, V],
      ['memberIds of numbers', { memberIds: [123] }, 400, V],
      // User ids are opaque (a JWT's sub may be anything printable, spaces too), but never hold a control character or `/`.
      ['an invalid member id', { memberIds: ['not\u0007an id'] }, 400, V],
      ['a member id with a /', { memberIds: ['tenant/42'] }, 400, V],
      ['a member id over 255 characters', { memberIds: ['x'.repeat(256)] }, 400, V],
      ['no memberIds', { title: 't' }, 400, V],
      [
        'too many members',
        { memberIds: Array.from({ length: MAX_MEMBERS }, (_, i) => `9f1d2c3b-0000-4000-8000-00000000000${i}`) },
        400,
        V,
      ],
      ['a NUL in the title', { title: 'a\u0000', memberIds: [] }, 400, V],
      ['a lone surrogate title', { title: LONE_SURROGATE, memberIds: [] }, 400, V],
      ['a long title', { title: big(201), memberIds: [] }, 400, V],
      ['a numeric title', { title: 7, memberIds: [] }, 400, V],
      ['an unknown member', { memberIds: [UNKNOWN_ID] }, 404, 'not_found'],
      ['an unknown member of a non-UUID id', { memberIds: ['app-user:nobody'] }, 404, 'not_found'],
      ['a body over the limit', { title: 't', memberIds: [], pad: big(BODY_MAX) }, 413, 'payload_too_large'],
    ] as const
  ).map(([name, body, status, code]) => ({
    name: `create a chat with ${name}`,
    method: 'POST',
    path: '/api/chats',
    body,
    status,
    code,
  })),

  // Ids in paths
  ...[
    'not-an-id',
    "'%20OR%20'1'='1",
    '%00',
    '%F0%9F%98%80',
    '%E0%A4%A',
    big(5000),
    `${UNKNOWN_ID}x`,
    '..%2F..%2Fetc',
  ].map((bad) => ({
    name: `get a chat by '${bad.slice(0, 20)}'`,
    method: 'GET',
    path: `/api/chats/${bad}`,
    status: 400,
    code: V,
  })),
  { name: 'get an unknown chat', method: 'GET', path: `/api/chats/${UNKNOWN_ID}`, status: 404, code: 'not_found' },
  {
    name: 'remove a member of a bad chat id',
    method: 'DELETE',
    path: `/api/chats/nope/members/:a`,
    status: 400,
    code: V,
  },
  { name: 'remove a bad member id', method: 'DELETE', path: `/api/chats/:chat/members/no%07pe`, status: 400, code: V },
  {
    name: 'remove a member id with an encoded /',
    method: 'DELETE',
    path: `/api/chats/:chat/members/a%2Fb`,
    status: 400,
    code: V,
  },
  {
    name: 'add a member with a bad id',
    method: 'POST',
    path: '/api/chats/:chat/members',
    body: { userId: 'no\u0007pe' },
    status: 400,
    code: V,
  },
  { name: 'add a member with no id', method: 'POST', path: '/api/chats/:chat/members', body: {}, status: 400, code: V },
  {
    name: 'add an unknown user',
    method: 'POST',
    path: '/api/chats/:chat/members',
    body: { userId: UNKNOWN_ID },
    status: 404,
    code: 'not_found',
  },
  {
    name: 'add a member to a bad chat id',
    method: 'POST',
    path: '/api/chats/x/members',
    body: { userId: UNKNOWN_ID },
    status: 400,
    code: V,
  },

  // POST /api/chats/:chatId/messages
  ...(
    [
      ['malformed JSON', '{"body": "x"'],
      ['an array', '["x"]'],
      ['no body', { clientMsgId: 'm1' }],
      ['an empty body', { body: '' }],
      ['a blank body', { body: ' \n\t ' }],
      ['a body over the length limit', { body: big(MAX_CHARS + 1) }],
      ['a NUL in the body', { body: 'a\u0000b' }],
      ['a lone surrogate in the body', { body: `a${LONE_SURROGATE}b` }],
      ['a numeric body', { body: 5 }],
      ['an object body', { body: { text: 'x' } }],
      ['a clientMsgId with a space', { body: 'x', clientMsgId: 'a b' }],
      ['a long clientMsgId', { body: 'x', clientMsgId: big(65) }],
      ['a non-ASCII clientMsgId', { body: 'x', clientMsgId: 'é' }],
      ['a numeric clientMsgId', { body: 'x', clientMsgId: 1 }],
    ] as const
  ).map(([name, body]) => ({
    name: `send with ${name}`,
    method: 'POST',
    path: '/api/chats/:chat/messages',
    body,
    status: 400,
    code: V,
  })),
  {
    name: 'send to a bad chat id',
    method: 'POST',
    path: '/api/chats/x/messages',
    body: { body: 'x' },
    status: 400,
    code: V,
  },
  {
    name: 'send to an unknown chat',
    method: 'POST',
    path: `/api/chats/${UNKNOWN_ID}/messages`,
    body: { body: 'x' },
    status: 404,
    code: 'not_found',
  },
  {
    name: 'send over the body limit',
    method: 'POST',
    path: '/api/chats/:chat/messages',
    body: { body: big(BODY_MAX) },
    status: 413,
    code: 'payload_too_large',
  },

  // GET /api/chats/:chatId/messages
  ...[
    'limit=0',
    'limit=201',
    'limit=-1',
    'limit=abc',
    'limit=1.5',
    'limit=1e400',
    'limit=',
    'before=0',
    'after=-1',
    'before=2&after=1',
    'after=99999999999999999999',
    'limit=5&limit=6',
    'before=1&before=2',
  ].map((q) => ({
    name: `history with ${q}`,
    method: 'GET',
    path: `/api/chats/:chat/messages?${q}`,
    status: 400,
    code: V,
  })),

  // POST /api/chats/:chatId/read and GET /api/users/:userId/presence
  ...[{ seq: -1 }, { seq: '1' }, { seq: 1.5 }, {}, { seq: Infinity }].map((body) => ({
    name: `read with ${JSON.stringify(body)}`,
    method: 'POST',
    path: '/api/chats/:chat/read',
    body,
    status: 400,
    code: V,
  })),
  { name: 'presence of a bad user id', method: 'GET', path: '/api/users/no%07pe/presence', status: 400, code: V },
  {
    name: 'presence of an unknown user id',
    method: 'GET',
    path: '/api/users/nope/presence',
    status: 404,
    code: 'not_found',
  },

  { name: 'an unknown route', method: 'GET', path: '/api/nothing-here', status: 404, code: 'not_found' },
  { name: 'an unknown method', method: 'PUT', path: '/api/chats', body: {}, status: 404, code: 'not_found' },
];

describe('bad HTTP input', () => {
  it.each(cases)('$name → $status $code', async ({ method, path, body, who = 'a', status, code }) => {
    const token = who === 'a' ? a.token : who === 'none' ? undefined : who;
    const real = path.replace(':chat', chatId).replace(':a', a.user.id);
    const r = await app.api.request(method, real, body, token);
    expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
    expect(typeof r.body.error.message).toBe('string');
  });

  it('cuts off an oversized body sent without a Content-Length', async () => {
    const r = await postChunked(app.url, `/api/chats/${chatId}/messages`, BODY_MAX * 4, a.token);
    expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status: 413, code: 'payload_too_large' });
  });

  it('treats upper-case ids as the same chat, so one chat never gets two seq counters', async () => {
    const upper = chatId.toUpperCase();
    const s1 = await app.api.send(a.token, upper, 'upper', 'up-1');
    const s2 = await app.api.send(a.token, chatId, 'lower', 'low-1');
    expect([s1.status, s2.status]).toEqual([201, 201]);
    expect(s1.body.message.chatId).toBe(chatId);
    expect(s2.body.message.seq).toBe(s1.body.message.seq + 1);
    expect((await app.api.request('GET', `/api/chats/${upper}`, undefined, b.token)).body.chat.id).toBe(chatId);
  });

  it('stores odd Unicode and injection strings verbatim and harmlessly', async () => {
    const chat = await app.api.newChat(a, [b], INJECTIONS[0]);
    const texts = [...ODD_TEXT, ...INJECTIONS].map((t) => t.slice(0, MAX_CHARS));
    for (const [i, body] of texts.entries()) {
      const r = await app.api.send(a.token, chat.id, body, `odd-${i}`);
      expect(r.status).toBe(201);
      expect(r.body.message.body).toBe(body);
    }
    const history = await app.api.history(b.token, chat.id, 'limit=200');
    expect(history.body.messages.map((m) => m.body)).toEqual(texts);
    expect(history.body.messages.map((m) => m.seq)).toEqual(texts.map((_, i) => i + 1));
    const got = await app.api.request('GET', `/api/chats/${chat.id}`, undefined, a.token);
    expect(got.body.chat.title).toBe(INJECTIONS[0]);
    // The tables are intact and nothing was evaluated.
    const { rows } = await env.pool.query('SELECT count(*)::int AS n FROM users');
    expect(rows[0].n).toBeGreaterThanOrEqual(3);
    expect(await env.redis.exists(`${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:seq`)).toBe(1);
  });

  it('refuses to add a member to a full chat', async () => {
    const extra = await Promise.all(Array.from({ length: MAX_MEMBERS - 1 }, (_, i) => app.api.newUser(`m${i}`)));
    const full = await app.api.newChat(a, extra);
    const r = await app.api.request('POST', `/api/chats/${full.id}/members`, { userId: c.user.id }, a.token);
    expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 409, code: 'conflict' });
  });

  it('still serves everyone afterwards', async () => {
    expect((await app.api.request('GET', '/healthz')).status).toBe(200);
    expect((await app.api.request('GET', '/api/me', undefined, c.token)).body.user.id).toBe(c.user.id);
    const s = await connectClient(app.url, b.token);
    s.send({ type: 'send', chatId, body: 'still here', clientMsgId: 'after-all' });
    await s.next((f) => f.type === 'ack' && f.clientMsgId === 'after-all', 'ack after the bad input');
    await s.close();
  });
});
