import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

/**
 * An answer given before the request body was read (413 from the body limit, 401 from the auth
 * middleware) against a real keep-alive client: it says `Connection: close`, the connection ends
 * cleanly, and the client's later requests are all answered.
 */
const BODY_MAX = 64 * 1024;
/** Longer than the fetch adapter's 500 ms drain timer, which used to destroy the connection. */
const FOLLOW_UP_MS = 1000;

let env: TestEnv;
let app: InProcess;
let base: URL;
let agent: Agent;

beforeAll(async () => {
  env = await createTestEnv({ HTTP_BODY_MAX: String(BODY_MAX) });
  app = await startInProcess(env, { workers: false });
  base = new URL(app.url);
});
afterEach(() => agent?.destroy());
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

interface Answer {
  status: number;
  connection: string | undefined;
  body: string;
  /** Which of the agent's sockets carried it (numbered in order of first use). */
  socketNo: number;
}

/** A request through the keep-alive agent; `chunked` sends the body without a Content-Length. */
function send(
  method: string,
  path: string,
  body?: Buffer,
  { chunked = false, headers = {} as Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        headers: {
          'content-type': 'application/json',
          ...headers,
          ...(body && !chunked ? { 'content-length': String(body.length) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            body: text,
            socketNo: numberOf(req.socket!),
          }),
        );
      },
    );
    req.on('error', reject);
    if (body && chunked) {
      for (let i = 0; i < body.length; i += 16 * 1024) req.write(body.subarray(i, i + 16 * 1024));
      req.end();
    } else {
      // In one write with the headers: a small body is then wholly there when the answer is made.
      req.end(body);
    }
  });
}

const socketNumbers = new WeakMap<Socket, number>();
let sockets = 0;
const numberOf = (s: Socket) => socketNumbers.get(s) ?? (socketNumbers.set(s, ++sockets), sockets);

/** Requests back to back for FOLLOW_UP_MS: every one answered, all on one connection. */
async function followUps(): Promise<Set<number>> {
  const used = new Set<number>();
  const until = Date.now() + FOLLOW_UP_MS;
  for (let i = 0; Date.now() < until; i++) {
    const r =
      i % 2 === 0
        ? await send('GET', '/healthz')
        : await send('POST', '/api/sessions', Buffer.from('{"username":"nobody_here","password":"wrong password"}'));
    expect(r.status).toBe(i % 2 === 0 ? 200 : 401);
    used.add(r.socketNo);
  }
  return used;
}

describe('an answer before the body was read, on a keep-alive connection', () => {
  const cases: [string, number, boolean][] = [
    ['an oversized Content-Length body (1 MB)', 1024 * 1024, false],
    ['an oversized chunked body (1 MB)', 1024 * 1024, true],
    ['a 200 KB body', 200 * 1024, false],
  ];
  it.each(cases)(
    '%s: 413 says Connection: close, and every later request is answered',
    async (_name, size, chunked) => {
      agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const body = Buffer.from(JSON.stringify({ username: 'big_one', password: 'x'.repeat(size) }));
      const tooBig = await send('POST', '/api/users', body, { chunked });
      expect(tooBig.status).toBe(413);
      expect(JSON.parse(tooBig.body)).toMatchObject({ error: { code: 'payload_too_large' } });
      const used = await followUps();
      expect(tooBig.connection).toBe('close');
      // One fresh connection after the closed one, kept for every follow-up: none was cut under them.
      expect([...used]).toEqual([tooBig.socketNo + 1]);
    },
  );

  it('a small body the app never read (401 from the auth middleware) closes too; one it read does not', async () => {
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await send('POST', '/api/chats', Buffer.from('{"title":"t","memberIds":[]}'));
    expect(first.status).toBe(401);
    // The follow-ups' POSTs are read (a failed login): their connection stays open.
    const used = await followUps();
    expect(first.connection).toBe('close');
    expect([...used]).toEqual([first.socketNo + 1]);
  });
});

/** A raw client: headers and part of a body, the rest only after the answer came. */
function rawPost(path: string, headers: string, totalBytes: number, firstBytes: number) {
  const socket = connect({ host: base.hostname, port: Number(base.port), allowHalfOpen: true });
  let received = '';
  const errors: string[] = [];
  socket.on('data', (c: Buffer) => (received += c.toString()));
  socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // The server's FIN; a connection reset instead (no 'end') settles it too, and the test fails on errors.
  const ended = Promise.race([new Promise<void>((resolve) => socket.once('end', resolve)), closed]);
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${base.host}\r\nContent-Type: application/json\r\nContent-Length: ${totalBytes}\r\n${headers}\r\n`,
  );
  socket.write('x'.repeat(firstBytes));
  return {
    socket,
    errors,
    received: () => received,
    ended,
    closed,
    /** Sends the rest of the body in pieces, each after the last was taken by the kernel. */
    async sendRest() {
      for (let sent = firstBytes; sent < totalBytes; sent += 16 * 1024) {
        const piece = Buffer.alloc(Math.min(16 * 1024, totalBytes - sent), 120);
        await new Promise<void>((resolve, reject) => socket.write(piece, (err) => (err ? reject(err) : resolve())));
      }
    },
  };
}

describe('the connection after an early answer', () => {
  it.each([
    ['413 for an oversized body', '/api/users', '', 1024 * 1024, 413],
    ['401 from the auth middleware on a POST', '/api/chats', '', 32 * 1024, 401],
  ])(
    '%s: the answer says close, the server half-closes, and the rest of the body is still taken',
    async (_name, path, headers, total, status) => {
      const c = rawPost(path, headers, total, 1000);
      await c.ended;
      expect(c.errors).toEqual([]);
      expect(c.received()).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(c.received().toLowerCase()).toContain('\r\nconnection: close\r\n');
      // The client finishes its upload after the FIN: no reset, because the server still reads.
      await c.sendRest();
      c.socket.end();
      await c.closed;
      expect(c.errors).toEqual([]);
    },
  );
});
