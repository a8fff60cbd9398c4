import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

let env: TestEnv;
let api: RunningProcess;
const workers: RunningProcess[] = [];

beforeAll(async () => {
  // The default job lock and stall check: a deployment's crash is what this measures.
  env = await createTestEnv({ PERSIST_BATCH_SIZE: '100' });
  api = await startApiProcess(env.env);
});
afterAll(async () => {
  await Promise.all([api, ...workers].map((p) => p?.kill('SIGTERM')));
  await env?.cleanup();
});

const count = async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n as number;

describe('a worker SIGKILLed mid-batch', () => {
  it('leaves its jobs stalled; a new worker redoes them within 10 s and every message is stored exactly once', async () => {
    const client = new ApiClient(api.url);
    const [a, b] = await Promise.all([client.newUser('a'), client.newUser('b')]);
    const chats = await Promise.all([0, 1, 2].map(() => client.newChat(a, [b])));
    const sendAll = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const r = await client.send(i % 2 ? a.token : b.token, chats[i % 3]!.id, `m${i}`, `k${i}`);
        expect(r.status).toBe(201);
      }
    };

    workers.push(await startWorkerProcess(env.env));
    await sendAll(0, 150);
    await waitFor(async () => (await count()) === 150, 'the first 150 persisted');

    // Hold a lock that blocks INSERT: the worker takes the next batch and is stuck inside it.
    const locker = new pg.Client({ connectionString: env.env.DATABASE_URL });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE');
    await sendAll(150, 450);
    await waitFor(
      async () =>
        (
          await env.pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'parley-worker' AND wait_event_type = 'Lock'`,
          )
        ).rows[0].n > 0,
      'the worker blocked inside a batch INSERT',
    );
    expect(await workers[0]!.kill('SIGKILL')).toBe(null);
    const killed = Date.now();
    await locker.query('ROLLBACK');
    await locker.end();
    // PostgreSQL may still finish the dead worker's INSERT once the lock is gone (it notices the
    // vanished client later): then its rows are in but its jobs are not completed, the case the
    // redo must handle without duplicates.

    workers.push(await startWorkerProcess(env.env));
    await waitFor(async () => (await count()) === 450, 'all 450 persisted by the new worker', { timeoutMs: 20_000 });
    // Its short lock ran out and the stall check gave its jobs back: seconds, not the old minute.
    expect(Date.now() - killed, 'from the kill until every message was in PostgreSQL (ms)').toBeLessThan(10_000);
    const { rows } = await env.pool.query(
      `SELECT chat_id, count(*)::int AS n, count(DISTINCT id)::int AS ids, max(seq)::int AS hi FROM messages GROUP BY chat_id`,
    );
    for (const r of rows) expect(r).toMatchObject({ n: 150, ids: 150, hi: 150 });
  });
});
