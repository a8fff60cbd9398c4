import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateCluster, startPrivateCluster } from '../../scripts/faults/private-services.js';
import { createLogKeys } from '../../src/message-log/keys.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * A Redis Cluster master without a replica SIGKILLed under two api processes and a worker: while
 * its slots have no master, chat goes on (the apis serve degraded, through PostgreSQL: every
 * chat, those of the dead master's slots and the others), every send is acked and delivered once;
 * once it is back (with its AOF) the apis return to normal mode, seqs go on above the degraded
 * ones, and PostgreSQL holds every message once.
 */
let cluster: PrivateCluster;
let env: TestEnv;
const procs: RunningProcess[] = [];
let apis: ApiClient[];

beforeAll(async () => {
  cluster = await startPrivateCluster({ masters: 3, aof: 'always' });
  env = await createTestEnv(
    { REDIS_CLUSTER_NODES: cluster.seedList, REDIS_PROBE_MS: '200', DEGRADED_SEQ_GAP: '1000' },
    { redis: 'cluster' },
  );
  env.redis.on('error', () => undefined);
  procs.push(...(await Promise.all([startApiProcess(env.env), startApiProcess(env.env), startWorkerProcess(env.env)])));
  apis = [new ApiClient(procs[0]!.url), new ApiClient(procs[1]!.url)];
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await env?.cleanup().catch(() => undefined);
  await cluster?.destroy();
});

const mode = async (api: ApiClient) =>
  (await api.request('GET', '/readyz')).body as { mode: string; redis: boolean; postgres: boolean };

describe('a Redis Cluster master without a replica killed', () => {
  it('keeps every chat working through PostgreSQL until the master is back, then resumes normal mode', async () => {
    const a: TestUser = await apis[0]!.newUser('a');
    const b: TestUser = await apis[1]!.newUser('b');
    const keys = createLogKeys(env.config.REDIS_KEY_PREFIX);
    // Chats until one is on the master to kill and another on a different master.
    const chats: { id: string }[] = [];
    const masterOf = async (chatId: string) => (await cluster.masterOf(keys.seq(chatId))).port;
    while (chats.length < 2 || new Set(await Promise.all(chats.map((c) => masterOf(c.id)))).size < 2) {
      chats.push(await apis[0]!.newChat(a, [b]));
    }
    const doomed = chats[0]!;
    const doomedPort = await masterOf(doomed.id);
    const other = (await Promise.all(chats.map(async (c) => ({ c, port: await masterOf(c.id) })))).find(
      (x) => x.port !== doomedPort,
    )!.c;
    const sb: TestSocket = await connectClient(procs[1]!.url, b.token);

    for (const chat of [doomed, other]) {
      const sent = await apis[0]!.send(a.token, chat.id, `before ${chat.id}`, `pre-${chat.id}`);
      expect(sent.body.message.seq).toBe(1);
      await sb.next(messageWithId(sent.body.message.id), 'a message before the outage');
    }
    await waitFor(
      async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === 2,
      'the first messages persisted',
    );

    const killed = await cluster.killMaster(keys.seq(doomed.id));
    // A send on the dead master's slot is refused while the api cannot tell whether Redis took it
    // (503, retry with the same clientMsgId, as the contract says), then acked through PostgreSQL.
    const refusals: number[] = [];
    const during = await waitFor(
      async () => {
        const r = await apis[0]!.send(a.token, doomed.id, 'during, on the dead slot', 'during-doomed');
        if (r.status === 201) return r;
        refusals.push(r.status);
        return null;
      },
      'the send on the dead slot acked (retried with its clientMsgId)',
      { intervalMs: 100 },
    );
    expect(refusals.every((status) => status === 503)).toBe(true);
    expect(during.body.message.seq).toBeGreaterThan(1);
    await sb.next(messageWithId(during.body.message.id), 'the degraded message on the other api');
    let seen = '';
    await waitFor(async () => {
      const modes = await Promise.all(apis.map(mode));
      seen = JSON.stringify(modes);
      return modes.every((m) => m.mode === 'degraded');
    }, 'degraded mode on both apis while a slot has no master').catch((err: unknown) => {
      throw new Error(`${String(err)}; last seen: ${seen}`);
    });
    const elsewhere = await apis[1]!.send(b.token, other.id, 'during, on a live slot', 'during-other');
    expect(elsewhere.status).toBe(201);
    const hist = await apis[1]!.history(b.token, doomed.id);
    expect(hist.body.messages.map((m) => m.body)).toEqual([`before ${doomed.id}`, 'during, on the dead slot']);

    await killed.start();
    await waitFor(
      async () => (await mode(apis[0]!)).mode === 'normal' && (await mode(apis[1]!)).mode === 'normal',
      'normal mode once the slot has its master again',
      { timeoutMs: 30_000 },
    );
    const after = await apis[1]!.send(b.token, doomed.id, 'after, on the slot that came back', 'after-doomed');
    expect(after.status).toBe(201);
    expect(after.body.message.seq).toBeGreaterThan(during.body.message.seq);
    // Idempotent across the outage: the retry of the degraded send finds the original.
    const retried = await apis[0]!.send(a.token, doomed.id, 'during, on the dead slot', 'during-doomed');
    expect(retried.body.message.id).toBe(during.body.message.id);

    await waitFor(
      async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === 5,
      'all five in PostgreSQL',
    );
    const { rows } = await env.pool.query<{ chat_id: string; n: number; ids: number }>(
      'SELECT chat_id, count(*)::int AS n, count(DISTINCT seq)::int AS ids FROM messages GROUP BY chat_id',
    );
    expect(rows.map((r) => r.n === r.ids)).toEqual(rows.map(() => true));
    const doomedHistory = await apis[0]!.history(a.token, doomed.id);
    expect(doomedHistory.body.messages.map((m) => m.body)).toEqual([
      `before ${doomed.id}`,
      'during, on the dead slot',
      'after, on the slot that came back',
    ]);
    await sb.close();
  });
});
