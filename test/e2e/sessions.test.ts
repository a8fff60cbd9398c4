import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queues/definitions.js';
import { SCHEDULED_JOBS } from '../../src/queues/definitions.js';
import type { SessionPurgeReport } from '../../workers/session-purge.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, upgradeStatus } from '../helpers/ws-client.js';

/**
 * Sessions end everywhere at once (two real api processes sharing Redis): logging out of every
 * session, or of one; and the worker deletes expired sessions from PostgreSQL in batches.
 */
const PURGE_INTERVAL_MS = 3_600_000;
const PURGE_BATCH = 500;

let env: TestEnv;
let one: RunningProcess;
let two: RunningProcess;
let worker: RunningProcess | undefined;
let api1: ApiClient;
let api2: ApiClient;

beforeAll(async () => {
  env = await createTestEnv({
    SESSION_PURGE_INTERVAL_MS: String(PURGE_INTERVAL_MS),
    SESSION_PURGE_BATCH: String(PURGE_BATCH),
  });
  [one, two] = await Promise.all([startApiProcess(env.env), startApiProcess(env.env)]);
  [api1, api2] = [new ApiClient(one.url), new ApiClient(two.url)];
});
afterAll(async () => {
  await Promise.all([one?.kill(), two?.kill(), worker?.kill()]);
  await env?.cleanup();
});

/** A second session of the user, opened on `api`. */
async function loginAgain(api: ApiClient, user: TestUser): Promise<string> {
  const r = await api.request('POST', '/api/sessions', {
    username: user.user.username,
    password: 'correct horse battery',
  });
  expect(r.status).toBe(200);
  return r.body.token as string;
}

const meStatus = async (api: ApiClient, token: string) =>
  (await api.request('GET', '/api/me', undefined, token)).status;

describe('DELETE /api/sessions', () => {
  it('ends every session of the caller on every process: each token is refused and each socket closes with 4001', async () => {
    const u = await api1.newUser('everywhere');
    const tokens = [u.token, await loginAgain(api2, u)];
    const other = await api2.newUser('bystander');
    const sockets = await Promise.all(tokens.flatMap((t) => [connectClient(one.url, t), connectClient(two.url, t)]));
    const bystander = await connectClient(one.url, other.token);
    // Every process has verified every token, so its cache would still trust them.
    for (const api of [api1, api2]) for (const t of tokens) expect(await meStatus(api, t)).toBe(200);

    expect((await api2.request('DELETE', '/api/sessions', undefined, tokens[1])).status).toBe(204);

    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([4001, 4001, 4001, 4001]);
    for (const api of [api1, api2]) for (const t of tokens) expect(await meStatus(api, t)).toBe(401);
    for (const url of [one.url, two.url]) for (const t of tokens) expect(await upgradeStatus(url, t)).toBe(401);
    const { rows } = await env.pool.query('SELECT 1 FROM sessions WHERE user_id = $1', [u.user.id]);
    expect(rows).toHaveLength(0);

    // Nobody else is logged out.
    for (const api of [api1, api2]) expect(await meStatus(api, other.token)).toBe(200);
    bystander.send({ type: 'ping', ref: 'still-here' });
    await bystander.next((f) => f.type === 'pong' && f.ref === 'still-here', 'pong');
    await bystander.close();
  });

  it('keeps DELETE /api/sessions/current ending only the session it is called with', async () => {
    const u = await api2.newUser('current');
    const kept = await loginAgain(api1, u);
    const [ended, stays] = await Promise.all([connectClient(two.url, u.token), connectClient(one.url, kept)]);
    for (const api of [api1, api2]) expect(await meStatus(api, u.token)).toBe(200);

    expect((await api1.request('DELETE', '/api/sessions/current', undefined, u.token)).status).toBe(204);

    expect(await ended.closed).toBe(4001);
    for (const api of [api1, api2]) {
      expect(await meStatus(api, u.token)).toBe(401);
      expect(await meStatus(api, kept)).toBe(200);
    }
    stays.send({ type: 'ping', ref: 'kept' });
    await stays.next((f) => f.type === 'pong' && f.ref === 'kept', 'pong');
    await stays.close();
  });
});

describe('the session purge', () => {
  it('deletes expired sessions in batches on a schedule of the worker, and only those', async () => {
    const u = await api1.newUser('purged');
    const expired = 2 * PURGE_BATCH + 200;
    await env.pool.query(
      `INSERT INTO sessions (token_hash, user_id, expires_at)
       SELECT sha256(('expired-' || g)::bytea), $1, now() - interval '1 minute' FROM generate_series(1, $2::int) g`,
      [u.user.id, expired],
    );
    const count = async (where: string) =>
      (await env.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sessions WHERE ${where}`)).rows[0]!.n;
    const live = await count('expires_at > now()');

    worker = await startWorkerProcess(env.env);
    // An `every` schedule runs once at once.
    await waitFor(async () => (await count('expires_at <= now()')) === 0, 'the expired sessions to be deleted');
    expect(await count('expires_at > now()')).toBe(live);
    expect(await meStatus(api2, u.token)).toBe(200);

    const queue = new Queue(QUEUES.sessionPurge, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    try {
      expect(await queue.getJobScheduler(SCHEDULED_JOBS.sessionPurge.schedulerId)).toMatchObject({
        every: PURGE_INTERVAL_MS,
      });
      const [run] = await waitFor(async () => {
        const done = await queue.getCompleted();
        return done.length > 0 ? done : undefined;
      }, 'the purge job to complete');
      expect(run!.returnvalue as SessionPurgeReport).toEqual({ deleted: expired, batches: 3 });
    } finally {
      await queue.close();
    }
  });
});
