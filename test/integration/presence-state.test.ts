import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import { createPresenceState, type PresenceState } from '../../src/services/presence-state.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The presence scripts against real Redis, with many "processes" (concurrent callers) racing:
 * whatever the interleaving, online and offline strictly alternate and each is reported once.
 */
const TTL_MS = 400;
let env: TestEnv;
let state: PresenceState;
let n = 0;
const user = () => `user-${++n}`;

beforeAll(async () => {
  env = await createTestEnv();
  const keys = createKeys(env.config.REDIS_KEY_PREFIX);
  state = createPresenceState({ redis: env.redis, scripts: createScripts(env.redis), keys, ttlMs: TTL_MS });
});
afterAll(async () => {
  await env?.cleanup();
});

/**
 * The sweep lists the user, and every connection of theirs has expired by Redis's clock. (The
 * index is bumped just before the connection is recorded, so under load it can come due a little
 * before the connections themselves, and a sweep then rightly finds nothing to remove yet.)
 */
const due = (userId: string) =>
  waitFor(async () => {
    if (!(await state.due(1000)).includes(userId)) return false;
    const [seconds, micros] = await env.redis.time();
    const newest = await env.redis.zrange(
      createKeys(env.config.REDIS_KEY_PREFIX).presenceConns(userId),
      '-1',
      '-1',
      'WITHSCORES',
    );
    return newest.length === 0 || Number(newest[1]) <= Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }, `${userId} due`);

describe('presence state', () => {
  it('is online from the first connection to the last close, across devices', async () => {
    const u = user();
    expect((await state.connect(u, ['c1'])).cameOnline).toBe(true);
    expect((await state.connect(u, ['c2'])).cameOnline).toBe(false);
    expect((await state.status(u)).online).toBe(true);
    expect((await state.disconnect(u, 'c1')).wentOffline).toBe(false);
    expect((await state.disconnect(u, 'c1')).wentOffline).toBe(false); // a repeated close is harmless
    const off = await state.disconnect(u, 'c2');
    expect(off.wentOffline).toBe(true);
    expect(await state.status(u)).toEqual({ online: false, lastSeen: off.lastSeen });
    expect((await state.disconnect(u, 'c2')).wentOffline).toBe(false);
  });

  it('reports exactly one offline when closes and sweeps race over expired connections', async () => {
    const users = Array.from({ length: 20 }, user);
    await Promise.all(users.map((u) => state.connect(u, ['a', 'b'])));
    const before = Date.now();
    await Promise.all(users.map(due));
    const results = await Promise.all(
      users.flatMap((u) => [
        ...Array.from({ length: 5 }, () => state.disconnect(u, null)), // five sweepers
        state.disconnect(u, 'a'), // a close arriving late
      ]),
    );
    expect(results.filter((r) => r.wentOffline).length).toBe(users.length);
    for (const u of users) expect((await state.status(u)).online).toBe(false);
    // A sweep's last-seen time is the last heartbeat (expiry - TTL), not the moment of the sweep,
    // unless a close arrived first (then it is that close's time).
    for (const r of results.filter((x) => x.wentOffline)) expect(r.lastSeen).toBeLessThanOrEqual(Date.now());
    expect(Math.min(...results.filter((x) => x.wentOffline).map((r) => r.lastSeen))).toBeGreaterThanOrEqual(
      before - TTL_MS - 1000,
    );
    expect((await state.due(1000)).filter((u) => users.includes(u))).toEqual([]);
  });

  it('comes back online when a stalled process renews after the sweep let the user go', async () => {
    const u = user();
    await state.connect(u, ['c']);
    await due(u);
    expect((await state.disconnect(u, null)).wentOffline).toBe(true);
    expect((await state.connect(u, ['c'])).cameOnline).toBe(true);
  });

  it('keeps a user whose other connection still renews, and drops the dead one at the next close', async () => {
    const u = user();
    await state.connect(u, ['dead', 'alive']);
    await waitFor(
      async () =>
        (await env.redis.zcount(`${env.config.REDIS_KEY_PREFIX}presence:{${u}}:conns`, '-inf', Date.now() - 50)) === 2,
      'both expired',
    );
    await state.connect(u, ['alive']); // the live process's heartbeat
    expect((await state.disconnect(u, null)).wentOffline).toBe(false); // a sweep
    expect((await state.status(u)).online).toBe(true);
    expect((await state.disconnect(u, 'alive')).wentOffline).toBe(true);
  });
});
