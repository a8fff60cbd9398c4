import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonBody, TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * Slow and greedy HTTP clients against the real api process, with small limits: trickled headers
 * or bodies are cut off at their deadline, idle keep-alive connections are closed, and connections
 * past the cap are refused while the open ones (and WebSockets) keep working.
 */
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1500;
const KEEPALIVE_TIMEOUT_MS = 1000;
const MAX_CONNECTIONS = 3;
/** How late a deadline may be seen: Node checks every 50 ms here, Node adds 1 s to keep-alive, plus a busy machine. */
const SLACK_MS = 1500;

let env: TestEnv;
let api: RunningProcess;
let addr: { host: string; port: number };
let user: TestUser;

beforeAll(async () => {
  env = await createTestEnv({
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_KEEPALIVE_TIMEOUT_MS: String(KEEPALIVE_TIMEOUT_MS),
    HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
  });
  api = await startApiProcess(env.env);
  const url = new URL(api.url);
  addr = { host: url.hostname, port: Number(url.port) };
  user = await register();
});
afterAll(async () => {
  await api?.kill();
  await env?.cleanup();
});

/** Registers and logs in over connections that close after their answer (no idle keep-alive left behind). */
async function register(): Promise<TestUser> {
  const post = (path: string, body: unknown) =>
    new Promise<{ status: number; body: JsonBody }>((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = request(
        {
          ...addr,
          method: 'POST',
          path,
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const credentials = { username: `limits_${Date.now()}`, password: 'correct horse battery' };
  expect((await post('/api/users', credentials)).status).toBe(201);
  const login = await post('/api/sessions', credentials);
  expect(login.status).toBe(200);
  return login.body as TestUser;
}

/** A raw connection that records what the server sends and when it closes. */
class RawConnection {
  readonly socket: Socket;
  received = '';
  readonly opened = performance.now();
  /** Resolves with the time (ms since opening) the connection closed. */
  readonly closed: Promise<number>;
  private listeners: (() => void)[] = [];

  constructor() {
    this.socket = connect(addr);
    this.socket.on('error', () => undefined); // a refused or reset connection just closes
    this.socket.on('data', (c: Buffer) => {
      this.received += c.toString();
      this.listeners.forEach((l) => l());
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve(performance.now() - this.opened)));
  }

  /** Writes `text` one character every `everyMs` until the connection closes (a slowloris client). */
  trickle(text: string, everyMs = 100): void {
    let i = 0;
    const timer = setInterval(() => {
      if (this.socket.destroyed || this.socket.writableEnded) return clearInterval(timer);
      this.socket.write(text[i++ % text.length]!);
    }, everyMs);
    void this.closed.then(() => clearInterval(timer));
  }

  /** Resolves once the received text has `count` complete answers to GET /healthz. */
  answers(count: number): Promise<void> {
    const done = () => (this.received.match(/"ok":true/g)?.length ?? 0) >= count;
    return new Promise((resolve, reject) => {
      if (done()) return resolve();
      this.listeners.push(() => done() && resolve());
      void this.closed.then(() => reject(new Error(`closed after ${JSON.stringify(this.received.slice(0, 200))}`)));
    });
  }

  healthz(): Promise<void> {
    const before = this.received.match(/"ok":true/g)?.length ?? 0;
    this.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${addr.host}\r\n\r\n`);
    return this.answers(before + 1);
  }
}

/** The time the connection closed, or a failure once it is still open `withinMs` after opening. */
function closesWithin(c: RawConnection, withinMs: number): Promise<number> {
  return Promise.race([
    c.closed,
    new Promise<number>((_, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`still open after ${withinMs} ms`)),
        withinMs - (performance.now() - c.opened),
      );
      void c.closed.then(() => clearTimeout(timer));
    }),
  ]);
}

describe('HTTP deadlines', () => {
  it('a connection that sends nothing is closed after the headers timeout', async () => {
    const c = new RawConnection();
    const at = await closesWithin(c, HEADERS_TIMEOUT_MS + SLACK_MS);
    expect(at).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(c.received).toMatch(/^HTTP\/1.1 408 /);
  });

  it('a client trickling its headers is cut off after the headers timeout, before the request timeout', async () => {
    const c = new RawConnection();
    c.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${addr.host}\r\n`);
    c.trickle('X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n');
    const at = await closesWithin(c, HEADERS_TIMEOUT_MS + SLACK_MS);
    expect(at).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(at).toBeLessThan(REQUEST_TIMEOUT_MS);
    expect(c.received).toMatch(/^HTTP\/1.1 408 /);
  });

  it('a client trickling a body is cut off after the request timeout', async () => {
    const c = new RawConnection();
    c.socket.write(
      `POST /api/sessions HTTP/1.1\r\nHost: ${addr.host}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"username":"`,
    );
    c.trickle('a');
    const at = await closesWithin(c, REQUEST_TIMEOUT_MS + SLACK_MS);
    expect(at).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(c.received).toMatch(/^HTTP\/1.1 408 /);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const c = new RawConnection();
    await c.healthz();
    const answered = performance.now() - c.opened;
    const at = await closesWithin(c, answered + KEEPALIVE_TIMEOUT_MS + SLACK_MS);
    expect(at - answered).toBeGreaterThanOrEqual(KEEPALIVE_TIMEOUT_MS - 50);
  });
});

describe('HTTP_MAX_CONNECTIONS', () => {
  const open: RawConnection[] = [];
  const sockets: TestSocket[] = [];
  afterAll(() => {
    open.forEach((c) => c.socket.destroy());
    sockets.forEach((s) => s.ws.close());
  });

  /**
   * A new connection that serves a request. A connection an earlier test closed may still count
   * for a moment on the server's side, so a refused one is retried until it is served.
   */
  const served = () =>
    waitFor(async () => {
      const c = new RawConnection();
      try {
        await c.healthz();
        return c;
      } catch {
        return null;
      }
    }, 'a connection under the cap to be served');

  it('refuses connections past the cap; the open ones keep working, and upgraded WebSockets do not count', async () => {
    // WebSockets first: while they were being upgraded they counted, once upgraded they do not.
    for (let i = 0; i < 2; i++) sockets.push(await connectClient(api.url, user.token));
    for (let i = 0; i < MAX_CONNECTIONS; i++) open.push(await served());

    const refused = new RawConnection();
    refused.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${addr.host}\r\n\r\n`);
    await closesWithin(refused, SLACK_MS);
    expect(refused.received).toBe('');

    // The connections under the cap serve request after request, and the WebSockets still answer.
    for (let round = 0; round < 3; round++) await Promise.all(open.map((c) => c.healthz()));
    for (const s of sockets) {
      s.send({ type: 'ping', ref: 'still-there' });
      await s.next((f) => f.type === 'pong' && f.ref === 'still-there', 'pong');
    }

    // One closes: a new connection is served again.
    open.shift()!.socket.destroy();
    open.push(await served());
  });
});
