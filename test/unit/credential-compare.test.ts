import * as crypto from 'node:crypto';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { requireAdmin } from '../../src/http/admin-auth.js';
import { mountBullBoard } from '../../src/http/routes/bull-board.js';
import { createLogger } from '../../src/logger.js';

// The comparison itself is the seam: a check whose length test returns early never reaches it.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compared = vi.mocked(crypto.timingSafeEqual);
afterEach(() => compared.mockClear());

const USER = 'ops';
const PASSWORD = 'a-board-password-of-some-length';
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

function board(): Hono {
  const app = new Hono();
  mountBullBoard(app, { queues: [], user: USER, password: PASSWORD, logger: createLogger('silent', 'test') });
  return app;
}

/** The byte lengths of every pair compared since the last clear. */
const comparedLengths = () => compared.mock.calls.map(([a, b]) => [(a as Buffer).length, (b as Buffer).length]);

describe('credential comparison', () => {
  it.each([
    ['a shorter password', USER, 'short'],
    ['a longer password', USER, `${PASSWORD}-and-more`],
    ['a password one character off', USER, `${PASSWORD.slice(0, -1)}X`],
    ['a wrong user of another length', 'someone-else', PASSWORD],
  ])(
    'Bull Board basic auth: %s is refused after comparing both halves as fixed-length digests',
    async (_name, user, password) => {
      const r = await board().request('/admin/queues/api/queues', { headers: basic(user, password) });
      expect(r.status).toBe(401);
      expect(comparedLengths()).toEqual([
        [32, 32],
        [32, 32],
      ]);
    },
  );

  it('Bull Board basic auth: the right credentials pass', async () => {
    const r = await board().request('/admin/queues/api/queues', { headers: basic(USER, PASSWORD) });
    expect(r.status).toBe(200);
  });

  it.each([
    ['a shorter token', 'short'],
    ['a longer token', 'an-admin-token-for-the-test-and-more'],
  ])('admin token: %s is compared as a fixed-length digest', async (_name, token) => {
    const app = new Hono();
    app.onError((_err, c) => c.json({ error: { code: 'unauthorized' } }, 401));
    app.get('/admin/x', requireAdmin('an-admin-token-for-the-test'), (c) => c.json({ ok: true }));
    expect((await app.request('/admin/x', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    expect(comparedLengths()).toEqual([[32, 32]]);
    expect(
      (await app.request('/admin/x', { headers: { authorization: 'Bearer an-admin-token-for-the-test' } })).status,
    ).toBe(200);
  });
});
