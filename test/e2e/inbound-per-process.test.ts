import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Per-chat sharded channels: an api process receives from Redis only the traffic of the chats
 * whose members it holds, not the system's. Three api processes, three chats each held by one api
 * only (its two members connected there), a different number of messages in each chat: every api's
 * `parley_fanout_received_total{kind="message"}` is its own chat's count. No worker: persisted
 * announcements (kind "persisted") would come too, counted apart. On the shared Redis and on the
 * run's local Redis Cluster.
 */
const SENDS = [3, 5, 8];

async function received(api: RunningProcess, kind: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  return sample(text, 'parley_fanout_received_total', { kind }) ?? 0;
}

const messagesOf = (s: TestSocket, chatId: string) =>
  s.frames.filter((f: Frame) => f.type === 'message' && (f.message as { chatId: string }).chatId === chatId);

describe.each(REDIS_KINDS)('three api processes, each holding the members of one chat (Redis: %s)', (kind) => {
  let env: TestEnv;
  const apis: RunningProcess[] = [];
  let worker: RunningProcess | undefined;

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
    apis.push(...(await Promise.all([0, 1, 2].map(() => startApiProcess(env.env)))));
  });
  afterAll(async () => {
    await Promise.all([...apis, ...(worker ? [worker] : [])].map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  let http: ApiClient;
  let owners: TestUser[], others: TestUser[];
  let chats: { id: string }[];
  let sockets: TestSocket[][];

  beforeAll(async () => {
    http = new ApiClient(apis[0]!.url);
    owners = await Promise.all([0, 1, 2].map((i) => http.newUser(`owner${i}`)));
    others = await Promise.all([0, 1, 2].map((i) => http.newUser(`other${i}`)));
    chats = await Promise.all([0, 1, 2].map((i) => http.newChat(owners[i]!, [others[i]!], `chat ${i}`)));
    // Chat i's two members on api i only.
    sockets = await Promise.all(
      [0, 1, 2].map((i) =>
        Promise.all([connectClient(apis[i]!.url, owners[i]!.token), connectClient(apis[i]!.url, others[i]!.token)]),
      ),
    );
  });
  afterAll(async () => {
    await Promise.all(sockets.flat().map((s) => s.close()));
  });

  it('receives from Redis only the messages of the chats it holds, each of them once', async () => {
    const before = await Promise.all(apis.map((a) => received(a, 'message')));
    // Sent through api 0 for every chat: where a message is sent does not decide where it goes.
    for (const [i, n] of SENDS.entries()) {
      for (let k = 0; k < n; k++)
        expect((await http.send(owners[i]!.token, chats[i]!.id, `c${i} #${k}`)).status).toBe(201);
    }
    for (const [i, n] of SENDS.entries()) {
      await sockets[i]![1]!.until(
        (fs) => fs.filter((f) => f.type === 'message').length >= n,
        `chat ${i}: ${n} messages`,
      );
    }
    const after = await Promise.all(apis.map((a) => received(a, 'message')));
    expect(after.map((n, i) => n - before[i]!)).toEqual(SENDS);
    // Nothing of another chat reached any socket.
    for (const [i, pair] of sockets.entries()) {
      for (const s of pair) expect(s.of('message').length).toBe(messagesOf(s, chats[i]!.id).length);
    }
  });

  it('persisted announcements also reach only the api holding the chat', async () => {
    const before = await Promise.all(apis.map((a) => received(a, 'persisted')));
    worker = await startWorkerProcess(env.env);
    // Every chat's messages get written; each chat's members hear of it on their own api.
    for (const [i, n] of SENDS.entries()) {
      await sockets[i]![0]!.until(
        (fs) => fs.some((f) => f.type === 'persisted' && f.chatId === chats[i]!.id && (f.seq as number) >= n),
        `chat ${i}: persisted up to ${n}`,
        30_000,
      );
    }
    const after = await Promise.all(apis.map((a) => received(a, 'persisted')));
    for (const [i, pair] of sockets.entries()) {
      // As many announcements as its own chat had, none of the others'.
      const own = pair[0]!.of('persisted').filter((f) => f.chatId === chats[i]!.id).length;
      expect(pair[0]!.of('persisted').length).toBe(own);
      expect(after[i]! - before[i]!).toBe(own);
    }
  });

  it("a member added to a chat on an api that held none of its members gets the chat's next message", async () => {
    // others[1] is on api 1, which holds nothing of chat 0.
    const watcher = sockets[1]![1]!;
    const before = await received(apis[1]!, 'message');
    const added = await http.request(
      'POST',
      `/api/chats/${chats[0]!.id}/members`,
      { userId: others[1]!.user.id },
      owners[0]!.token,
    );
    expect(added.status).toBe(201);
    const next = await http.send(owners[0]!.token, chats[0]!.id, 'after the add');
    expect(next.status).toBe(201);
    await watcher.next(messageWithId(next.body.message.id), 'the next message of the chat it was added to');
    // The api is subscribed to the chat now (it may have taken that first one from the log, if it
    // was published before the subscription was): the next ones come live from Redis.
    const again = await http.send(owners[0]!.token, chats[0]!.id, 'and again');
    await watcher.next(messageWithId(again.body.message.id), 'the message after that');
    expect(messagesOf(watcher, chats[0]!.id).map((f) => (f.message as { id: string }).id)).toEqual([
      next.body.message.id,
      again.body.message.id,
    ]);
    await waitFor(async () => (await received(apis[1]!, 'message')) >= before + 1, 'api 1 received it from Redis');
  });
});
