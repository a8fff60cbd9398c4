import { randomBytes } from 'node:crypto';
import pg from 'pg';
import format from 'pg-format';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../helpers/http-client.js';
import { ADMIN_URL, databaseUrl } from '../helpers/pg.js';
import { type RunningProcess, startAllInOne } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient } from '../helpers/ws-client.js';

/** `npm start` on a machine whose database does not exist yet: it creates, migrates and serves. */
const freshDb = `parley_fresh_${randomBytes(4).toString('hex')}`;
let env: TestEnv;
let proc: RunningProcess | undefined;

afterAll(async () => {
  await proc?.kill('SIGKILL');
  await env?.cleanup();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', freshDb));
  await admin.end();
});

describe('npm start', () => {
  it('creates and migrates a missing database, serves /healthz and a chat, and stops cleanly on SIGTERM', async () => {
    env = await createTestEnv();
    proc = await startAllInOne({ ...env.env, DATABASE_URL: databaseUrl(freshDb) });
    const api = new ApiClient(proc.url);
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    expect((await api.request('GET', '/readyz')).body).toEqual({ redis: true, postgres: true, mode: 'normal' });

    const [a, b] = await Promise.all([api.newUser('a'), api.newUser('b')]);
    const chat = await api.newChat(a, [b]);
    const bs = await connectClient(proc.url, b.token);
    const sent = await api.send(a.token, chat.id, 'hello from npm start', 'n-1');
    expect(sent.status).toBe(201);
    await bs.next((f) => f.type === 'message', 'the message');
    const fresh = new pg.Pool({ connectionString: databaseUrl(freshDb) });
    await waitFor(
      async () => (await fresh.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === 1,
      'persisted by the in-process worker',
    );
    await fresh.end();

    const started = Date.now();
    const code = await proc.kill('SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await bs.closed).toBe(1001);
  });
});
