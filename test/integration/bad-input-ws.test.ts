import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECTIONS, LONE_SURROGATE, ODD_TEXT, UNKNOWN_ID } from '../helpers/hostile-input.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * Every WebSocket frame type against malformed, mistyped, oversized, odd and hostile input: each
 * is answered with an `error` frame carrying the contract's code (and the send's clientMsgId), the
 * connection stays open, and the server keeps serving others.
 */
const MAX_CHARS = 100;
const MAX_PAYLOAD = 64 * 1024;

let env: TestEnv;
let app: InProcess;
let a: TestUser, b: TestUser;
let chatId: string;
let sa: TestSocket;
let ref = 0;

beforeAll(async () => {
  env = await createTestEnv({ MESSAGE_MAX_CHARS: String(MAX_CHARS), WS_MAX_PAYLOAD: String(MAX_PAYLOAD) });
  app = await startInProcess(env, { workers: false });
  [a, b] = await Promise.all([app.api.newUser('a'), app.api.newUser('b')]);
  chatId = (await app.api.newChat(a, [b])).id;
  sa = await connectClient(app.url, a.token);
});
afterAll(async () => {
  await sa?.close();
  await app?.stop();
  await env?.cleanup();
});

/**
 * Sends a raw frame, then a ping; refusals are synchronous, so everything the frame caused
 * arrives before the pong. Returns those frames.
 */
async function answersTo(s: TestSocket, raw: string | Buffer): Promise<Frame[]> {
  const from = s.frames.length;
  const r = `fence-${++ref}`;
  s.ws.send(raw);
  s.send({ type: 'ping', ref: r });
  await s.next((f) => f.type === 'pong' && f.ref === r, `pong ${r}`, from);
  return s.frames.slice(
    from,
    s.frames.findIndex((f, i) => i >= from && f.type === 'pong' && f.ref === r),
  );
}

/** Sends a hand-written upgrade request; resolves with the status of the answer. */
function rawUpgrade(requestLine: string): Promise<number> {
  const { port } = new URL(app.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () =>
      sock.write(
        `${requestLine}\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
    let text = '';
    sock.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return;
      resolve(Number(m[1]));
      sock.destroy();
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed without an answer: ${text}`)));
  });
}

const big = (n: number) => 'x'.repeat(n);
const send = (over: Record<string, unknown>) =>
  JSON.stringify({ type: 'send', chatId: ':chat', body: 'hi', clientMsgId: 'c1', ...over });
const V = 'validation_failed';

/** [name, raw frame (`:chat` is replaced), code, clientMsgId the error must name]. */
const cases: [string, string, string, string?][] = [
  ['malformed JSON', '{"type":"send",', V],
  ['an empty frame', '', V],
  ['an array', '[{"type":"ping"}]', V],
  ['a number', '42', V],
  ['null', 'null', V],
  ['a bare string', '"ping"', V],
  ['true', 'true', V],
  ['an unknown type', '{"type":"nope"}', V],
  ['a numeric type', '{"type":5}', V],
  ['no type', '{"chatId":"x"}', V],
  ['a type in the wrong case', '{"type":"SEND"}', V],
  ['a type with a NUL', '{"type":"send\\u0000"}', V],
  ['an object type', '{"type":{"toString":"send"}}', V],
  ['a __proto__ payload', '{"type":"ping","__proto__":{"polluted":true}}', 'pong-ok'],
  ['send without a chatId', send({ chatId: undefined }), V, 'c1'],
  ['send without a body', send({ body: undefined }), V, 'c1'],
  ['send without a clientMsgId', send({ clientMsgId: undefined }), V],
  ['send to a bad chat id', send({ chatId: 'nope' }), V, 'c1'],
  ['send to a numeric chat id', send({ chatId: 7 }), V, 'c1'],
  ['send to an injection chat id', send({ chatId: "' OR 1=1 --" }), V, 'c1'],
  ['send with an empty body', send({ body: '' }), V, 'c1'],
  ['send with a blank body', send({ body: '\n \t' }), V, 'c1'],
  ['send with a body over the limit', send({ body: big(MAX_CHARS + 1) }), V, 'c1'],
  ['send with a NUL in the body', send({ body: 'a\u0000b' }), V, 'c1'],
  ['send with a lone surrogate', send({ body: `a${LONE_SURROGATE}` }), V, 'c1'],
  ['send with a numeric body', send({ body: 1 }), V, 'c1'],
  ['send with an array body', send({ body: ['x'] }), V, 'c1'],
  // An invalid clientMsgId is still echoed (cut to 64 characters), so the client can match it.
  ['send with a spaced clientMsgId', send({ clientMsgId: 'a b' }), V, 'a b'],
  ['send with a long clientMsgId', send({ clientMsgId: big(65) }), V, big(64)],
  ['send with a non-ASCII clientMsgId', send({ clientMsgId: 'ü' }), V, 'ü'],
  ['send with a numeric clientMsgId', send({ clientMsgId: 3 }), V],
  ['send to an unknown chat', send({ chatId: UNKNOWN_ID, clientMsgId: 'c-unknown' }), 'not_found', 'c-unknown'],
  ['sync without chats', '{"type":"sync"}', V],
  ['sync with an array', '{"type":"sync","chats":[1]}', V],
  ['sync with a bad chat id', '{"type":"sync","chats":{"nope":0}}', V],
  ['sync with a negative seq', '{"type":"sync","chats":{":chat":-1}}', V],
  ['sync with a fractional seq', '{"type":"sync","chats":{":chat":1.5}}', V],
  ['sync with a string seq', '{"type":"sync","chats":{":chat":"1"}}', V],
  ['sync with a huge seq', '{"type":"sync","chats":{":chat":1e400}}', V],
  ['sync with an unsafe seq', '{"type":"sync","chats":{":chat":9007199254740993}}', V],
  [
    'sync of too many chats',
    JSON.stringify({
      type: 'sync',
      chats: Object.fromEntries(
        Array.from({ length: 1001 }, (_, i) => [`9f1d2c3b-0000-4000-8000-${String(i).padStart(12, '0')}`, 0]),
      ),
    }),
    V,
  ],
  ['typing without a chatId', '{"type":"typing"}', V],
  ['typing with a bad chat id', '{"type":"typing","chatId":"x"}', V],
  ['read without a seq', '{"type":"read","chatId":":chat"}', V],
  ['read with a negative seq', '{"type":"read","chatId":":chat","seq":-5}', V],
  ['read with a string seq', '{"type":"read","chatId":":chat","seq":"5"}', V],
  ['read with a bad chat id', '{"type":"read","chatId":"x","seq":1}', V],
  ['ping with an object ref', '{"type":"ping","ref":{"a":1}}', V],
  ['ping with a long ref', JSON.stringify({ type: 'ping', ref: big(65) }), V],
  ['deep nesting', `{"type":"sync","chats":${'['.repeat(3000)}${']'.repeat(3000)}}`, V],
];

describe('bad WebSocket frames', () => {
  it.each(cases.map(([name, raw, code, clientMsgId]) => ({ name, raw, code, clientMsgId })))(
    '$name → $code',
    async ({ raw, code, clientMsgId }) => {
      const frame = raw.replaceAll(':chat', chatId);
      if (code !== V && code !== 'pong-ok') {
        // Refusals that need a lookup (unknown chat) come after the fence: wait by clientMsgId.
        const from = sa.frames.length;
        sa.ws.send(frame);
        const answer = await sa.next(
          (f) => f.type === 'error' && f.clientMsgId === clientMsgId,
          `error for ${clientMsgId}`,
          from,
        );
        expect(answer).toMatchObject({ type: 'error', code, message: expect.any(String) });
        return;
      }
      const answers = await answersTo(sa, frame);
      if (code === 'pong-ok') {
        expect(answers).toEqual([{ type: 'pong', ref: null }]);
        return;
      }
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({ type: 'error', code, message: expect.any(String) });
      expect(answers[0]!.clientMsgId).toBe(clientMsgId);
    },
  );

  it('answers a binary frame with an error', async () => {
    const answers = await answersTo(sa, Buffer.from([1, 2, 3]));
    expect(answers).toEqual([expect.objectContaining({ type: 'error', code: V })]);
  });

  it('sends odd Unicode and injection strings verbatim', async () => {
    const texts = [...ODD_TEXT, ...INJECTIONS].map((t) => t.slice(0, MAX_CHARS));
    for (const [i, body] of texts.entries()) sa.send({ type: 'send', chatId, body, clientMsgId: `ws-odd-${i}` });
    await sa.until(
      (fs) => texts.every((_, i) => fs.some((f) => f.type === 'ack' && f.clientMsgId === `ws-odd-${i}`)),
      'every ack',
    );
    const acked = texts.map((_, i) => sa.frames.find((f) => f.type === 'ack' && f.clientMsgId === `ws-odd-${i}`)!);
    expect(acked.map((f) => (f.message as { body: string }).body)).toEqual(texts);
    const history = await app.api.history(b.token, chatId, 'limit=200');
    const bodies = new Map(history.body.messages.map((m) => [m.id, m.body]));
    for (const f of acked) {
      const m = f.message as { id: string; body: string };
      expect(bodies.get(m.id)).toBe(m.body);
    }
  });

  it('closes a frame over the size limit with 1009, and the process and other sockets carry on', async () => {
    const other = await connectClient(app.url, b.token);
    const victim = await connectClient(app.url, a.token);
    victim.send(JSON.stringify({ type: 'send', chatId, body: big(MAX_PAYLOAD), clientMsgId: 'too-big' }));
    expect(await victim.closed).toBe(1009);
    expect(victim.of('ack')).toEqual([]);

    other.send({ type: 'send', chatId, body: 'after the big one', clientMsgId: 'after-big' });
    await other.next((f) => f.type === 'ack' && f.clientMsgId === 'after-big', 'ack on the other socket');
    await sa.next(
      (f) => f.type === 'message' && (f.message as { body: string }).body === 'after the big one',
      'delivery to a',
    );
    const again = await connectClient(app.url, a.token);
    expect(await answersTo(again, '{"type":"nope"}')).toEqual([expect.objectContaining({ type: 'error', code: V })]);
    await Promise.all([other.close(), again.close()]);
  });

  it.each([
    ['an unparsable request target', 'GET http://[::1 HTTP/1.1', 400],
    ['a bad percent-escape in the token', 'GET /ws?token=%ZZ%00 HTTP/1.1', 401],
    ['another path', 'GET /api/me HTTP/1.1', 404],
    ['no token at all', 'GET /ws HTTP/1.1', 401],
    ['a token and the wrong method', 'POST /ws?token=:token HTTP/1.1', 405],
  ])('refuses an upgrade with %s (%s)', async (_name, requestLine, status) => {
    expect(await rawUpgrade(requestLine.replace(':token', encodeURIComponent(a.token)))).toBe(status);
    expect((await app.api.request('GET', '/healthz')).status).toBe(200);
  });

  it('kept the connection open through every refusal', async () => {
    expect(sa.ws.readyState).toBe(sa.ws.OPEN);
    expect((await app.api.request('GET', '/healthz')).status).toBe(200);
  });
});
