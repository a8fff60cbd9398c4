import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import { createPresenceState, type PresenceState } from '../../src/services/presence-state.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The per-user connection count kept in the presence connection set (presence-connect.lua with a
 * maximum): exact under racing callers, blind to connections whose process stopped renewing
 * them, and never in the way of a heartbeat.
 */
const TTL_MS = 300;
let env: TestEnv;
let state: PresenceState;
let n = 0;
const user = () => `admit-${++n}`;

beforeAll(async () => {
  env = await createTestEnv();
  state = createPresenceState({
    redis: env.redis,
    scripts: createScripts(env.redis),
    keys: createKeys(env.config.REDIS_KEY_PREFIX),
    ttlMs: TTL_MS,
  });
});
afterAll(async () => {
  await env?.cleanup();
});

describe('admitting connections', () => {
  it('admits exactly the maximum of many racing connections, the first one bringing the user online', async () => {
    const u = user();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => state.admit(u, `c${i}`, 5)));
    const admitted = results.filter((r) => r !== null);
    expect(admitted).toHaveLength(5);
    expect(admitted.filter((r) => r.cameOnline)).toHaveLength(1);
    expect((await state.status(u)).online).toBe(true);
  });

  it('counts only live connections: an expired one (its process died) no longer holds a place', async () => {
    const u = user();
    expect(await state.admit(u, 'dead', 1)).not.toBeNull();
    expect(await state.admit(u, 'new', 1)).toBeNull();
    await waitFor(async () => (await state.admit(u, 'new', 1)) !== null, 'the dead connection expired');
  });

  it('renews connections already admitted, whatever the maximum', async () => {
    const u = user();
    await state.admit(u, 'a', 2);
    await state.admit(u, 'b', 2);
    expect(await state.admit(u, 'a', 2)).not.toBeNull(); // the same connection again is no new one
    expect((await state.connect(u, ['a', 'b'])).cameOnline).toBe(false);
    expect(await state.admit(u, 'c', 2)).toBeNull();
    await state.disconnect(u, 'a');
    expect(await state.admit(u, 'c', 2)).not.toBeNull();
  });
});
