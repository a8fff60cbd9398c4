import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyNodes } from '../../src/redis/client.js';
import { scanKeys } from '../../src/redis/scan.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, messageWithId, type TestSocket } from '../helpers/ws-client.js';

/**
 * The core guarantee with real processes: two api processes and a worker, 20 WebSocket clients
 * split across both apis, 5 chats of 4, every client sending 50 messages at once; on the shared
 * Redis and on the run's local Redis Cluster (3 masters: the chats' slots spread over them).
 */
const CHATS = 5;
const PER_CHAT = 4;
const SENDS = 50;
const PER_CHAT_TOTAL = PER_CHAT * SENDS;

describe.each(REDIS_KINDS)('two api processes, one worker, 20 clients in 5 chats (Redis: %s)', (kind) => {
  let env: TestEnv;
  const procs: RunningProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
    procs.push(
      ...(await Promise.all([startApiProcess(env.env), startApiProcess(env.env), startWorkerProcess(env.env)])),
    );
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  it('delivers every message to every member exactly once in seq order, and stores each once', async () => {
    const apis = [new ApiClient(procs[0]!.url), new ApiClient(procs[1]!.url)];
    const users: TestUser[] = await Promise.all(
      Array.from({ length: CHATS * PER_CHAT }, (_, i) => apis[i % 2]!.newUser(`load${i}`)),
    );
    const chats = await Promise.all(
      Array.from({ length: CHATS }, (_, c) => {
        const members = users.slice(c * PER_CHAT, (c + 1) * PER_CHAT);
        return apis[0]!.newChat(members[0]!, members.slice(1), `chat ${c}`);
      }),
    );
    // Client i is on api i % 2, so every chat has members on both processes.
    const sockets: TestSocket[] = await Promise.all(users.map((u, i) => connectClient(procs[i % 2]!.url, u.token)));
    const chatOf = (i: number) => chats[Math.floor(i / PER_CHAT)]!.id;

    sockets.forEach((s, i) => {
      for (let n = 0; n < SENDS; n++)
        s.send({ type: 'send', chatId: chatOf(i), body: `u${i} #${n}`, clientMsgId: `u${i}-${n}` });
    });

    await Promise.all(
      sockets.map((s, i) =>
        s.until(
          (fs) =>
            fs.filter((f) => f.type === 'ack').length === SENDS &&
            fs.filter((f) => f.type === 'message').length >= PER_CHAT_TOTAL,
          `client ${i}: ${SENDS} acks and ${PER_CHAT_TOTAL} messages`,
          60_000,
        ),
      ),
    );
    // A marker per chat, sent after everything: once it arrives, any duplicate would have too.
    const markers = await Promise.all(
      chats.map((c, ci) => apis[ci % 2]!.send(users[ci * PER_CHAT]!.token, c.id, 'marker', 'marker')),
    );
    await Promise.all(
      sockets.map((s, i) => s.next(messageWithId(markers[Math.floor(i / PER_CHAT)]!.body.message.id), 'marker')),
    );

    sockets.forEach((s, i) => {
      expect(s.of('error')).toEqual([]);
      const seqs = s.of('message').map((f) => (f.message as { seq: number; chatId: string }).seq);
      expect(new Set(s.of('message').map((f) => (f.message as { chatId: string }).chatId))).toEqual(
        new Set([chatOf(i)]),
      );
      // Exactly once and in order: 1..N then the marker.
      expect(seqs).toEqual(Array.from({ length: PER_CHAT_TOTAL + 1 }, (_, k) => k + 1));
      // Each of its own sends was acked once, with a distinct seq.
      const ackSeqs = s.of('ack').map((f) => (f.message as { seq: number }).seq);
      expect(new Set(ackSeqs).size).toBe(SENDS);
    });

    for (const [ci, chat] of chats.entries()) {
      const reader = users[ci * PER_CHAT + 1]!;
      const seen: number[] = [];
      let after = 0;
      for (;;) {
        const page = await apis[ci % 2]!.history(reader.token, chat.id, `after=${after}&limit=200`);
        seen.push(...page.body.messages.map((m) => m.seq));
        if (!page.body.hasMore) break;
        after = seen.at(-1)!;
      }
      expect(seen).toEqual(Array.from({ length: PER_CHAT_TOTAL + 1 }, (_, k) => k + 1));
    }

    const total = CHATS * (PER_CHAT_TOTAL + 1);
    await waitFor(
      async () => (await env.pool.query('SELECT count(*)::int AS n FROM messages')).rows[0].n === total,
      'the worker to drain',
      { timeoutMs: 60_000 },
    );
    const { rows } = await env.pool.query(
      `SELECT chat_id, count(*)::int AS n, count(DISTINCT id)::int AS ids, min(seq)::int AS lo, max(seq)::int AS hi
         FROM messages GROUP BY chat_id`,
    );
    expect(rows).toHaveLength(CHATS);
    for (const r of rows)
      expect(r).toMatchObject({ n: PER_CHAT_TOTAL + 1, ids: PER_CHAT_TOTAL + 1, lo: 1, hi: PER_CHAT_TOTAL + 1 });
    if (kind === 'cluster') {
      // The chats' keys are on more than one master: the run crossed slots and nodes.
      const perMaster = await Promise.all(
        keyNodes(env.redis).map(async (node) => {
          let n = 0;
          for await (const keys of scanKeys([node], `${env.config.REDIS_KEY_PREFIX}chat:*`)) n += keys.length;
          return n;
        }),
      );
      expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
    }
    await Promise.all(sockets.map((s) => s.close()));
  });
});
