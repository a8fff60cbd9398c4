import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient } from '../helpers/ws-client.js';

/**
 * Requests a real api process must survive gracefully: a frame nested 30,000 deep, and HTTP
 * requests that offer to switch to another protocol than WebSocket (curl --http2 offers h2c).
 */
const run = promisify(execFile);

let env: TestEnv;
let api: RunningProcess;
let http: ApiClient;
let user: TestUser;

beforeAll(async () => {
  env = await createTestEnv({ LOG_LEVEL: 'info' });
  api = await startApiProcess(env.env);
  http = new ApiClient(api.url);
  user = await http.newUser('hostile');
});
afterAll(async () => {
  await api?.kill('SIGTERM');
  await env?.cleanup();
});

/** Writes raw bytes to the api and resolves with everything it answered, once it closed the connection. */
function raw(request: string): Promise<string> {
  const { port } = new URL(api.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write(request));
    let text = '';
    sock.on('data', (c: Buffer) => (text += c.toString()));
    sock.on('error', reject);
    sock.on('close', () => resolve(text));
  });
}

describe('a frame nested 30,000 deep', () => {
  it('is answered with an error frame, logs no stack trace, and the connection keeps working', async () => {
    const s = await connectClient(api.url, user.token);
    const deep = `{"type":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    for (let i = 0; i < 3; i++) {
      const from = s.frames.length;
      s.send(deep);
      s.send({ type: 'ping', ref: `after-${i}` });
      await s.next((f) => f.type === 'pong' && f.ref === `after-${i}`, 'pong', from);
      expect(s.frames.slice(from)).toEqual([
        { type: 'error', code: 'validation_failed', message: expect.any(String) },
        { type: 'pong', ref: `after-${i}` },
      ]);
    }
    expect(s.ws.readyState).toBe(s.ws.OPEN);
    await s.close();
    // Neither the error nor a stack trace, raw or inside a JSON log line.
    expect(api.output()).not.toMatch(/RangeError|Maximum call stack|frame handler failed|(\n|\\n)\s+at /);
  });
});

describe('a request offering another protocol than WebSocket', () => {
  const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

  it('is served as an ordinary HTTP request', async () => {
    const health = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\n${h2c}Connection: close\r\n\r\n`);
    expect(health).toMatch(/^HTTP\/1\.1 200 /);

    const body = JSON.stringify({ username: `h2c_${Date.now()}`, password: 'correct horse battery' });
    const created = await raw(
      `POST /api/users HTTP/1.1\r\nHost: x\r\n${h2c}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
        // A second request on the same connection: it stays an HTTP/1.1 connection.
        `GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user.token}\r\nConnection: close\r\n\r\n`,
    );
    const statuses = [...created.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([201, 200]);
    expect(created).toContain(`"id":"${user.user.id}"`);
  });

  it('is what curl --http2 sends, and gets its answer', async () => {
    const { stdout } = await run('curl', [
      '--http2',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{http_version}',
      `${api.url}/healthz`,
    ]);
    expect(stdout).toBe('200 1.1');
  });

  it('leaves WebSocket upgrades as they were', async () => {
    const refused = await raw(
      'GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(refused).toMatch(/^HTTP\/1\.1 404 /);
    const s = await connectClient(api.url, user.token);
    await s.close();
  });
});
