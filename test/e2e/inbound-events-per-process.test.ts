import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { sample } from '../helpers/prometheus.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Typing, read and presence events ride the chats' sharded channels as messages do: an api
 * process receives them only for the chats whose members it holds (its
 * `parley_fanout_received_total{kind="event"|"presence"}`), and a presence transition, published
 * on each of the user's chats, still reaches every connection sharing a chat with the user once,
 * however many chats they share, and never the user's own. Two api processes, no worker.
 */
let env: TestEnv;
const apis: RunningProcess[] = [];
let http: ApiClient;

beforeAll(async () => {
  env = await createTestEnv();
  apis.push(...(await Promise.all([0, 1].map(() => startApiProcess(env.env)))));
  http = new ApiClient(apis[0]!.url);
});
afterAll(async () => {
  await Promise.all(apis.map((p) => p.kill('SIGTERM')));
  await env?.cleanup();
});

async function received(api: RunningProcess, kind: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  return sample(text, 'parley_fanout_received_total', { kind }) ?? 0;
}

/** Every api's count of each kind, read together. */
async function counts(): Promise<{ event: number; presence: number }[]> {
  return Promise.all(
    apis.map(async (api) => ({ event: await received(api, 'event'), presence: await received(api, 'presence') })),
  );
}

const presenceOf = (s: TestSocket, userId: string, status?: string) =>
  s.frames.filter((f) => f.type === 'presence' && f.userId === userId && (!status || f.status === status));

const nextPresence = (s: TestSocket, userId: string, status: string) =>
  s.next((f) => f.type === 'presence' && f.userId === userId && f.status === status, `${status} of ${userId}`);

/**
 * A message sent now on the chat and received by `s`: whatever was published on the chat's channel
 * before it reached `s`'s api first (one Redis, one subscriber connection per api: in order), and
 * what was published on another chat's channel before it would have too, had the api subscribed it.
 */
async function marker(s: TestSocket, sender: TestUser, chatId: string): Promise<void> {
  const sent = await http.send(sender.token, chatId, 'marker');
  expect(sent.status).toBe(201);
  await s.next(messageWithId(sent.body.message.id), 'marker');
}

describe('typing, read and presence events on the chats’ channels', () => {
  it('reach only the api holding members of the chat: each api counts its own chat’s, none of the other’s', async () => {
    const [x1, x2, x3, y1, y2, y3] = await Promise.all([
      http.newUser('x1'),
      http.newUser('x2'),
      http.newUser('x3'),
      http.newUser('y1'),
      http.newUser('y2'),
      http.newUser('y3'),
    ]);
    const chatX = await http.newChat(x1, [x2, x3], 'x');
    const chatY = await http.newChat(y1, [y2, y3], 'y');
    // X's members on api 0 only, Y's on api 1 only.
    const [sx1, sx2] = [await connectClient(apis[0]!.url, x1.token), await connectClient(apis[0]!.url, x2.token)];
    const [sy1, sy2] = [await connectClient(apis[1]!.url, y1.token), await connectClient(apis[1]!.url, y2.token)];
    // Their onlines: one copy each (each has one chat), on its own api only.
    await waitFor(async () => {
      const c = await counts();
      return c[0]!.presence === 2 && c[1]!.presence === 2;
    }, 'the four onlines received');
    const before = await counts();

    // X: two typing events and one read; one presence cycle (online, offline) of x3.
    sx1.send({ type: 'typing', chatId: chatX.id });
    sx2.send({ type: 'typing', chatId: chatX.id });
    await sx2.next((f) => f.type === 'typing' && f.userId === x1.user.id, 'x1 typing');
    await sx1.next((f) => f.type === 'typing' && f.userId === x2.user.id, 'x2 typing');
    await marker(sx2, x1, chatX.id);
    sx2.send({ type: 'read', chatId: chatX.id, seq: 1 });
    await sx1.next((f) => f.type === 'read' && f.userId === x2.user.id && f.seq === 1, 'x2 read');
    const sx3 = await connectClient(apis[0]!.url, x3.token);
    await nextPresence(sx1, x3.user.id, 'online');
    await sx3.close();
    await nextPresence(sx1, x3.user.id, 'offline');

    // Y: one typing event; two presence cycles of y3.
    sy1.send({ type: 'typing', chatId: chatY.id });
    await sy2.next((f) => f.type === 'typing' && f.userId === y1.user.id, 'y1 typing');
    for (let cycle = 0; cycle < 2; cycle++) {
      const from = sy1.frames.length;
      const sy3 = await connectClient(apis[1]!.url, y3.token);
      await sy1.next((f) => f.type === 'presence' && f.userId === y3.user.id && f.status === 'online', 'y3 on', from);
      await sy3.close();
      await sy1.next((f) => f.type === 'presence' && f.userId === y3.user.id && f.status === 'offline', 'y3 off', from);
    }

    // Anything published before these reached each api first: the counts are final.
    await Promise.all([marker(sx1, x2, chatX.id), marker(sy1, y2, chatY.id)]);
    const after = await counts();
    const delta = after.map((c, i) => ({
      event: c.event - before[i]!.event,
      presence: c.presence - before[i]!.presence,
    }));
    expect(delta).toEqual([
      { event: 3, presence: 2 },
      { event: 1, presence: 4 },
    ]);
    // And no socket heard of the other chat.
    for (const s of [sx1, sx2]) {
      expect(s.frames.some((f) => f.chatId === chatY.id || f.userId === y3.user.id)).toBe(false);
    }
    for (const s of [sy1, sy2]) {
      expect(s.frames.some((f) => f.chatId === chatX.id || f.userId === x3.user.id)).toBe(false);
    }
    expect(presenceOf(sx1, x3.user.id).map((f) => f.status)).toEqual(['online', 'offline']);
    expect(presenceOf(sy1, y3.user.id).map((f) => f.status)).toEqual(['online', 'offline', 'online', 'offline']);
    await Promise.all([sx1, sx2, sy1, sy2].map((s) => s.close()));
  });

  it('write a presence transition once to each connection sharing three chats with the user, none to the user', async () => {
    const [u, v, w] = await Promise.all([http.newUser('subject'), http.newUser('three'), http.newUser('two')]);
    // v shares three chats with u, w two of them; v on api 0 (two sockets), w and u on api 1.
    const c1 = await http.newChat(u, [v, w], 'c1');
    const c2 = await http.newChat(u, [v, w], 'c2');
    const c3 = await http.newChat(u, [v], 'c3');
    const chats = [c1, c2, c3];
    const sw = await connectClient(apis[1]!.url, w.token);
    const sv1 = await connectClient(apis[0]!.url, v.token);
    await nextPresence(sw, v.user.id, 'online');
    const sv2 = await connectClient(apis[0]!.url, v.token);
    for (const c of chats) await marker(sv1, u, c.id);
    // v's online came to api 1 on c1 and c2, once to w.
    expect(presenceOf(sw, v.user.id)).toHaveLength(1);
    const before = await received(apis[0]!, 'presence');

    const su = await connectClient(apis[1]!.url, u.token);
    await Promise.all([sv1, sv2, sw].map((s) => nextPresence(s, u.user.id, 'online')));
    // api 0 took in a copy per chat (all three hold v) and wrote one frame per connection.
    await waitFor(async () => (await received(apis[0]!, 'presence')) === before + 3, 'three copies on api 0');
    for (const c of chats) await marker(sv1, v, c.id);
    await Promise.all([marker(sw, v, c1.id), marker(sw, v, c2.id)]);
    for (const s of [sv1, sv2, sw]) expect(presenceOf(s, u.user.id, 'online')).toHaveLength(1);

    await su.close();
    await Promise.all([sv1, sv2, sw].map((s) => nextPresence(s, u.user.id, 'offline')));
    await waitFor(async () => (await received(apis[0]!, 'presence')) === before + 6, 'three more on api 0');
    for (const c of chats) await marker(sv1, v, c.id);
    await Promise.all([marker(sw, v, c1.id), marker(sw, v, c2.id)]);
    for (const s of [sv1, sv2, sw]) {
      expect(presenceOf(s, u.user.id).map((f) => f.status)).toEqual(['online', 'offline']);
    }
    // The user's own connection got none of its own transitions.
    expect(presenceOf(su, u.user.id)).toEqual([]);
    // The frame is the contract's, unchanged.
    expect(presenceOf(sv1, u.user.id)[0]).toEqual({
      type: 'presence',
      userId: u.user.id,
      status: 'online',
      lastSeenAt: expect.any(String),
    });
    await Promise.all([sv1, sv2, sw].map((s) => s.close()));
  });
});
