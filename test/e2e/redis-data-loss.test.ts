import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../scripts/faults/private-services.js';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Redis restarted empty (no AOF) before any worker wrote what it held: the api processes that
 * acked those messages write them to PostgreSQL themselves, with their acked seqs, and new sends
 * continue above a gap. No worker runs in this file, so only the api's own copy can save them.
 */
let redis: PrivateRedis;
let env: TestEnv;
const apis: RunningProcess[] = [];

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: false });
  env = await createTestEnv({ REDIS_URL: redis.url, REDIS_PROBE_MS: '200', DEGRADED_SEQ_GAP: '1000' });
  env.redis.on('error', () => undefined);
  apis.push(...(await Promise.all([startApiProcess(env.env), startApiProcess(env.env)])));
});
afterAll(async () => {
  await Promise.all(apis.map((p) => p.kill('SIGKILL')));
  await env?.cleanup();
  await redis?.destroy();
});

const stored = async (chatId: string) =>
  (
    await env.pool.query<{ seq: number; body: string }>(
      'SELECT seq, body FROM messages WHERE chat_id = $1 ORDER BY seq',
      [chatId],
    )
  ).rows;
const normal = async (api: ApiClient) =>
  ((await api.request('GET', '/readyz')).body as { mode: string }).mode === 'normal';

describe('Redis restarted empty', () => {
  it('loses nothing acked: each api writes what it acked lately to PostgreSQL, and seqs go on above a gap', async () => {
    const [one, two] = apis.map((p) => new ApiClient(p.url)) as [ApiClient, ApiClient];
    const a = await one.newUser('a');
    const b = await two.newUser('b');
    const chat = await one.newChat(a, [b]);
    const acked: { seq: number; body: string }[] = [];
    for (let i = 1; i <= 6; i++) {
      const [api, user] = i % 2 ? [one, a] : [two, b];
      const r = await api.send(user.token, chat.id, `before ${i}`, `k${i}`);
      expect(r.status).toBe(201);
      acked.push({ seq: r.body.message.seq, body: r.body.message.body });
    }
    expect(acked.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await stored(chat.id)).toEqual([]);

    await redis.kill('SIGKILL');
    redis.wipe();
    await redis.start();
    await waitFor(async () => (await normal(one)) && (await normal(two)), 'both apis back in normal mode');
    await waitFor(async () => (await stored(chat.id)).length === 6, 'the acked messages in PostgreSQL');
    expect(await stored(chat.id)).toEqual(acked);

    // The counter is gone with Redis: the next seq jumps the gap, never reusing an acked one.
    const after = await one.send(a.token, chat.id, 'after', 'k7');
    expect(after.status).toBe(201);
    expect(after.body.message.seq).toBeGreaterThan(1000);
  });
});
