import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { createKeys } from '../../src/redis/keys.js';

/**
 * A worker killed between a batch's INSERT and the hand-on of the chat's next job, the one
 * window where the chat's persist ticket outlived its job: the batch had already marked the chat
 * as handed on. The worker process stops there through a test seam (test/fixtures), so the kill
 * lands in the window every time. Lock and stall settings are the defaults.
 */
const BATCH = 5;
/** More than ten batches (the rounds one flush writes for a backlog) hold: the rest is handed on. */
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
  (await env.pool.query<{ seq: number }>('SELECT seq::int AS seq FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId])).rows.map((r) => r.seq);

describe('a worker killed before it hands a chat on', () => {
  it('leaves only a short claim on the ticket; the chat is written again within 10 s of the kill', async () => {
    const client = new ApiClient(api.url);
    const [a, b] = await Promise.all([client.newUser('a'), client.newUser('b')]);
    const chat = await client.newChat(a, [b]);
    // No worker yet: the first send adds the chat's job, the others ride on it.
    for (let i = 1; i <= SENT; i++) expect((await client.send(a.token, chat.id, `m${i}`, `k${i}`)).status).toBe(201);

    const stopping = await startProcess('test/fixtures/worker-stopping-at-hand-on.ts', env.env, /parley worker ready/);
    workers.push(stopping);
    await waitFor(() => stopping.output().includes(`stopped before handing on: ${chat.id}`), 'the worker at the hand-on');
    const written = (await seqs(chat.id)).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(SENT);
    // What the ticket says while the worker sits in the window: a claim, not a minute's ticket.
    const ticket = createKeys(env.config.REDIS_KEY_PREFIX).ticket(chat.id);
    const ttl = await env.redis.pttl(ticket);
    expect(ttl, 'the ticket held between the INSERT and the hand-on (ms)').toBeLessThanOrEqual(env.config.PERSIST_TICKET_CLAIM_MS);

    expect(await stopping.kill('SIGKILL')).toBe(null);
    const killed = Date.now();
    workers.push(await startWorkerProcess(env.env));

    // The claim runs out by itself; the chat's next send then takes the ticket and adds a job.
    await waitFor(async () => (await env.redis.exists(ticket)) === 0, 'the claim run out', { timeoutMs: 10_000 });
    expect((await client.send(b.token, chat.id, 'after the crash', 'after')).status).toBe(201);
    await waitFor(async () => (await seqs(chat.id)).length === SENT + 1, 'every message in PostgreSQL', { timeoutMs: 10_000 });
    expect(Date.now() - killed, 'from the kill until PostgreSQL held every message (ms)').toBeLessThan(10_000);
    expect(await seqs(chat.id)).toEqual(Array.from({ length: SENT + 1 }, (_, i) => i + 1));
  });
});
