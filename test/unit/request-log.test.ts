import { Writable } from 'node:stream';
import { Hono } from 'hono';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.js';
import { requestLog } from '../../src/http/request-log.js';

function appWithLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const app = new Hono();
  app.use(requestLog(logger));
  app.onError((err, c) => c.json({ error: { code: 'x' } }, err instanceof AppError ? (err.status as 503) : 500));
  app.post('/api/sessions', async (c) => c.json({ token: 'tok-secret-in-the-answer' }));
  app.get('/api/me', (c) => c.json({ ok: true }));
  app.get('/boom', () => {
    throw new AppError('unavailable', 'down');
  });
  app.get('/healthz', (c) => c.json({ ok: true }));
  return { app, lines };
}

describe('request log', () => {
  it('writes one line per request with method, path, status and duration, and nothing secret', async () => {
    const { app, lines } = appWithLog();
    await app.request('/api/sessions', {
      method: 'POST',
      body: JSON.stringify({ username: 'u', password: 'pw-secret' }),
    });
    await app.request('/api/me?token=query-secret', { headers: { authorization: 'Bearer header-secret' } });
    await app.request('/boom');
    await app.request('/nowhere');

    expect(lines.map((l) => [l.msg, l.method, l.path, l.status])).toEqual([
      ['request', 'POST', '/api/sessions', 200],
      ['request', 'GET', '/api/me', 200],
      ['request', 'GET', '/boom', 503],
      ['request', 'GET', '/nowhere', 404],
    ]);
    for (const l of lines) expect(typeof l.ms).toBe('number');
    // A failed dependency is worth a warning; the rest is info.
    expect(lines.map((l) => l.level)).toEqual([30, 30, 40, 30]);
    const text = JSON.stringify(lines);
    for (const secret of ['pw-secret', 'query-secret', 'header-secret', 'tok-secret'])
      expect(text).not.toContain(secret);
  });

  it('keeps probes out of the info log', async () => {
    const { app, lines } = appWithLog();
    await app.request('/healthz');
    expect(lines).toEqual([]);
  });
});
