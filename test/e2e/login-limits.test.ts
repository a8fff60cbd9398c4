import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { hashedId } from '../../src/services/window-limiter.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The abuse limits of logins and registrations on real api processes: two behind a proxy
 * (TRUST_PROXY) sharing one Redis, where every limit must hold across both, and one on its own
 * without TRUST_PROXY and with a small password hash queue, flooded.
 */
const FAILURES = 3;
const LOGINS = 10;
const REGISTRATIONS = 3;
const PASSWORD = 'correct horse battery';

let env: TestEnv;
let envC: TestEnv;
let a: RunningProcess;
let b: RunningProcess;
let c: RunningProcess;

beforeAll(async () => {
  [env, envC] = await Promise.all([createTestEnv(), createTestEnv()]);
  const limits = {
    TRUST_PROXY: 'true',
    LOGIN_FAILURES_PER_MIN: String(FAILURES),
    LOGINS_PER_MIN: String(LOGINS),
    REGISTRATIONS_PER_MIN: String(REGISTRATIONS),
  };
  // C hashes at the production cost, so that a flood keeps its two slots busy long enough to fill the queue.
  const floodable = {
    PASSWORD_HASH_COST: '16384',
    PASSWORD_HASH_CONCURRENCY: '2',
    PASSWORD_HASH_QUEUE_MAX: '3',
    REGISTRATIONS_PER_MIN: '3',
  };
  [a, b, c] = await Promise.all([
    startApiProcess({ ...env.env, ...limits }),
    startApiProcess({ ...env.env, ...limits }),
    startApiProcess({ ...envC.env, ...floodable }),
  ]);
});
afterAll(async () => {
  await Promise.all([a?.kill(), b?.kill(), c?.kill()]);
  await Promise.all([env?.cleanup(), envC?.cleanup()]);
});

interface Answer {
  status: number;
  code: string | undefined;
  retryAfter: string | null;
}

/** Behind the proxy every request names its client: a fresh address unless the test gives one. */
let addresses = 0;
const freshAddress = () => `10.20.${(addresses >> 8) & 255}.${addresses++ & 255}`;

async function post(
  api: RunningProcess,
  path: string,
  body: unknown,
  forwardedFor: string | null = freshAddress(),
): Promise<Answer> {
  const res = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(forwardedFor === null ? {} : { 'x-forwarded-for': forwardedFor }),
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: json.error?.code, retryAfter: res.headers.get('retry-after') };
}

const login = (api: RunningProcess, username: string, password: string, forwardedFor?: string | null) =>
  post(api, '/api/sessions', { username, password }, forwardedFor);

let names = 0;
async function register(api: RunningProcess, forwardedFor?: string | null): Promise<string> {
  const username = `lim_${Date.now().toString(36)}_${names++}`;
  const r = await post(api, '/api/users', { username, password: PASSWORD }, forwardedFor);
  expect(r.status).toBe(201);
  return username;
}

function expectRateLimited(r: Answer): void {
  expect(r).toMatchObject({ status: 429, code: 'rate_limited' });
  expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
}

const statuses = (answers: Answer[]) => answers.map((r) => r.status).sort();

describe('failed logins per username, across api processes', () => {
  it('locks the username after the limit, refuses the right password while locked, and lets it in once the window ends', async () => {
    const username = await register(a);
    expect(
      statuses([
        await login(a, username, 'wrong-1'),
        await login(b, username, 'wrong-2'),
        await login(a, username, 'wrong-3'),
      ]),
    ).toEqual([401, 401, 401]);
    expectRateLimited(await login(b, username, 'wrong-4'));
    // Locked: the right password is refused too, on both processes and whatever the case of the name.
    expectRateLimited(await login(a, username, PASSWORD));
    expectRateLimited(await login(b, username.toUpperCase(), PASSWORD));

    // The window ends (its counter expires in Redis): the right password works again.
    const counter = createKeys(env.config.REDIS_KEY_PREFIX).windowLimit(
      'login-failures',
      hashedId(username.toLowerCase()),
    );
    expect(await env.redis.get(counter)).toBe(String(FAILURES));
    await env.redis.pexpire(counter, 1);
    await waitFor(async () => (await env.redis.exists(counter)) === 0, 'the window to end');
    expect((await login(b, username, PASSWORD)).status).toBe(200);
  });

  it('counts a username that does not exist like one that does', async () => {
    const username = `nobody_${Date.now().toString(36)}`;
    for (let i = 0; i < FAILURES; i++) expect((await login(i % 2 ? a : b, username, 'guess')).status).toBe(401);
    expectRateLimited(await login(a, username, 'guess'));
  });

  it('lets no more than the limit of a burst of concurrent guesses be tried', async () => {
    const username = await register(b);
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => login(i % 2 ? a : b, username, `guess-${i}`)));
    expect(burst.filter((r) => r.status === 401)).toHaveLength(FAILURES);
    for (const r of burst.filter((x) => x.status !== 401)) expectRateLimited(r);
    expectRateLimited(await login(a, username, PASSWORD));
  });

  it('does not count successful logins', async () => {
    const username = await register(a);
    for (let i = 0; i < FAILURES + 2; i++) expect((await login(i % 2 ? a : b, username, PASSWORD)).status).toBe(200);
    for (let i = 0; i < FAILURES; i++) expect((await login(a, username, 'wrong')).status).toBe(401);
    expectRateLimited(await login(b, username, 'wrong'));
  });
});

describe('per client address, across api processes, behind a trusted proxy', () => {
  it('limits every login attempt of an address, taking the address from the last X-Forwarded-For entry', async () => {
    const username = await register(a);
    const address = freshAddress();
    for (let i = 0; i < LOGINS; i++) expect((await login(i % 2 ? a : b, username, PASSWORD, address)).status).toBe(200);
    expectRateLimited(await login(a, username, PASSWORD, address));
    // The client wrote the first entries, the proxy appended the last one: only that one counts.
    expectRateLimited(await login(b, username, PASSWORD, `203.0.113.9, ${address}`));
    expect((await login(b, username, PASSWORD, `${address}, ${freshAddress()}`)).status).toBe(200);
    expect((await login(a, username, PASSWORD)).status).toBe(200);
  });

  it('limits the registrations of an address', async () => {
    const address = freshAddress();
    for (let i = 0; i < REGISTRATIONS; i++) await register(i % 2 ? a : b, address);
    const refused = await post(
      b,
      '/api/users',
      { username: `lim_over_${Date.now().toString(36)}`, password: PASSWORD },
      address,
    );
    expectRateLimited(refused);
    await register(a);
  });
});

describe('an api process without TRUST_PROXY, with a small password hash queue', () => {
  let account: string;
  beforeAll(async () => {
    // The first of C's three registrations from 127.0.0.1 (the next test counts on it).
    account = await register(c, null);
  });

  it('ignores X-Forwarded-For: the socket address is the client address', async () => {
    await register(c, freshAddress());
    await register(c, freshAddress());
    expectRateLimited(
      await post(c, '/api/users', { username: `lim_c_${Date.now().toString(36)}`, password: PASSWORD }, freshAddress()),
    );
  });

  it('answers a flood past the queue at once with 503, never computing more hashes at once than allowed', async () => {
    const flood = await Promise.all(Array.from({ length: 40 }, (_, i) => login(c, account, `wrong-${i}`, null)));
    const refused = flood.filter((r) => r.status === 503);
    // Two computing and three waiting are always let in; the rest arrive while the queue is full.
    expect(flood.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(5);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length + flood.filter((r) => r.status === 401).length).toBe(flood.length);
    for (const r of refused) expect(r).toMatchObject({ code: 'unavailable', retryAfter: '1' });

    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(sample(metrics, 'parley_password_hashes_active_max')).toBe(2);
    expect(sample(metrics, 'parley_password_hashes_refused_total')).toBe(refused.length);
    expect(sample(metrics, 'parley_password_hashes_waiting')).toBe(0);
    // Past the flood, logins are served again.
    expect((await login(c, account, PASSWORD, null)).status).toBe(200);
  });
});
