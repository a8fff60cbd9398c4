import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A worker killed while it holds a chat with messages still pending: after a batch's INSERT, the
 * chat's ticket is held for the chat's job, which this worker runs. The worker process stops
 * there through a test seam (test/fixtures), so the kill lands in that window every time; the
 * job's lock runs out and another worker redoes it, with no further send needed. Lock and stall
 * settings are the defaults.
 */
const BATCH = 5;
/** More than one batch's worth: the chat still has messages pending when the worker stops. */
const SENT = 60;

let env: TestEnv;
let api: RunningProcess;
const workers: RunningProcess[] = [];

beforeAll(async () => {
  env = await createTestEnv({ PERSIST_BATCH_SIZE: String(BATCH) });
  api = await startApiProcess(env.env);
});
afterAll(async () => {
  await Promise.all([api, ...workers].map((p) => p?.kill('SIGKILL')));
  await env?.cleanup();
});

const seqs = async (chatId: string) =>
  (
    await env.pool.query<{ seq: number }>('SELECT seq::int AS seq FROM messages WHERE chat_id = $1 ORDER BY seq', [
      chatId,
    ])
  ).rows.map((r) => r.seq);

describe('a worker killed while it holds a chat', () => {
  it('leaves the chat to its job: another worker writes the rest within 10 s of the kill, with no new send', async () => {
    const client = new ApiClient(api.url);
    const [a, b] = await Promise.all([client.newUser('a'), client.newUser('b')]);
    const chat = await client.newChat(a, [b]);
    // No worker yet: the first send adds the chat's job, the others ride on it.
    for (let i = 1; i <= SENT; i++) expect((await client.send(a.token, chat.id, `m${i}`, `k${i}`)).status).toBe(201);

    const stopping = await startProcess('test/fixtures/worker-stopping-mid-chat.ts', env.env, /parley worker ready/);
    workers.push(stopping);
    await waitFor(
      () => stopping.output().includes(`stopped holding: ${chat.id}`),
      'the worker stopped holding the chat',
    );
    const written = (await seqs(chat.id)).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(SENT);
    // The ticket is held for the chat's job, which is active on the stopped worker: no send adds one.
    const ticket = createKeys(env.config.REDIS_KEY_PREFIX).ticket(chat.id);
    expect(await env.redis.exists(ticket)).toBe(1);

    expect(await stopping.kill('SIGKILL')).toBe(null);
    const killed = Date.now();
    workers.push(await startWorkerProcess(env.env));

    // The dead worker's lock runs out, a live worker's stall check moves the job back, and it
    // writes the rest: nothing more is sent.
    await waitFor(async () => (await seqs(chat.id)).length === SENT, 'every message in PostgreSQL', {
      timeoutMs: 10_000,
    });
    expect(Date.now() - killed, 'from the kill until PostgreSQL held every message (ms)').toBeLessThan(10_000);
    expect(await seqs(chat.id)).toEqual(Array.from({ length: SENT }, (_, i) => i + 1));
    await waitFor(async () => (await env.redis.exists(ticket)) === 0, 'the ticket released once written');
  });
});
