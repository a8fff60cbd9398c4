import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivatePostgres, type PrivatePostgres } from '../../scripts/faults/private-services.js';
import { ensureDatabase, migrate } from '../../src/db/migrate.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, messageWithId } from '../helpers/ws-client.js';

/** PostgreSQL stopped under a running system: sends go on through Redis and catch up later. */
let postgres: PrivatePostgres;
let env: TestEnv;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  postgres = await startPrivatePostgres();
  const url = `${postgres.baseUrl}/parley`;
  await ensureDatabase(url);
  const pool = new pg.Pool({ connectionString: url });
  await migrate(pool);
  await pool.end();
  env = await createTestEnv({ DATABASE_URL: url });
  env.pool.on('error', () => undefined);
  procs.push(...(await Promise.all([startApiProcess(env.env), startWorkerProcess(env.env)])));
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await postgres?.start().catch(() => undefined);
  await env?.cleanup();
  await postgres?.destroy();
});

const rowCount = async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n as number;

describe('PostgreSQL down', () => {
  it('acks sends over WS and HTTP through Redis, answers 503 where PostgreSQL is needed, and catches up within 30 s', async () => {
    const api = new ApiClient(procs[0]!.url);
    const [a, b] = (await Promise.all([api.newUser('a'), api.newUser('b')])) as [TestUser, TestUser];
    const chat = await api.newChat(a, [b]);
    const sa = await connectClient(procs[0]!.url, a.token);
    const sb = await connectClient(procs[0]!.url, b.token);
    await api.send(a.token, chat.id, 'before', 'pg-0');
    await waitFor(async () => (await rowCount()) === 1, 'first message persisted');

    await postgres.stop();
    const ready = await api.request('GET', '/readyz');
    expect(ready.body).toMatchObject({ redis: true, postgres: false, mode: 'normal' });
    const needsPg = await api.request('POST', '/api/chats', { memberIds: [] }, a.token);
    expect(needsPg.status).toBe(503);
    expect(needsPg.body.error.code).toBe('unavailable');

    const sent: string[] = [];
    for (let i = 1; i <= 10; i++) {
      sa.send({ type: 'send', chatId: chat.id, body: `ws ${i}`, clientMsgId: `pw-${i}` });
      const ack = await sa.next((f) => f.type === 'ack' && f.clientMsgId === `pw-${i}`, `ack ${i}`);
      sent.push((ack.message as { id: string }).id);
      const r = await api.send(b.token, chat.id, `http ${i}`, `ph-${i}`);
      expect(r.status).toBe(201);
      sent.push(r.body.message.id);
    }
    await sb.next(messageWithId(sent.at(-2)!), 'live delivery while PostgreSQL is down');
    const history = await api.history(a.token, chat.id, 'limit=50');
    expect(history.body.messages).toHaveLength(21);

    await postgres.start();
    const back = Date.now();
    await waitFor(async () => (await rowCount()) === 21, 'everything persisted after PostgreSQL returned', {
      timeoutMs: 30_000,
    });
    expect(Date.now() - back).toBeLessThan(30_000);
    const { rows } = await env.pool.query('SELECT count(DISTINCT id)::int AS ids, max(seq)::int AS hi FROM messages');
    expect(rows[0]).toEqual({ ids: 21, hi: 21 });
    await Promise.all([sa.close(), sb.close()]);
  });
});
