import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../scripts/faults/private-services.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Membership changes reach an api process's sockets through pub/sub, which loses what is published
 * while the process's subscriber connection is down, and has nothing to carry them while Redis is
 * away. A member removed in either case must still get nothing more of the chat. A private Redis,
 * so that the api's subscriber is the only one and can be kept from reconnecting (maxclients)
 * until the removal was published to nobody.
 */
let redis: PrivateRedis;
let env: TestEnv;
let api: RunningProcess;
let admin: Redis;
let http: ApiClient;

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: false });
  env = await createTestEnv({ REDIS_URL: redis.url, REDIS_PROBE_MS: '200' });
  env.redis.on('error', () => undefined); // the last test stops Redis
  api = await startApiProcess(env.env);
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  http = new ApiClient(api.url);
});
afterAll(async () => {
  await redis?.start(); // the last test stopped it (the api shuts down quickly with it back)
  await admin?.config('SET', 'maxclients', '10000').catch(() => undefined);
  await api?.kill('SIGTERM');
  admin?.disconnect();
  await env?.cleanup();
  await redis?.destroy();
});

const channel = (name: string) => `${env.config.REDIS_KEY_PREFIX}channel:${name}`;

/**
 * The api's subscriber connections (src/infra/clients.ts names each connection by process and
 * role): the classic channels' and the chats' sharded channels' (`…-chats`).
 */
async function subscriberIds(): Promise<string[]> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((l) => / name=parley-api:subscriber(-chats)? /.test(l))
    .map((l) => /^id=(\d+)/.exec(l)![1]!);
}

async function subscribers(name: string): Promise<number> {
  const [, n] = (await admin.pubsub('NUMSUB', channel(name))) as [string, number];
  return n;
}

/** Subscribers of a chat's own sharded channel (`channel:chat-messages:{chatId}`). */
async function chatSubscribers(chatId: string): Promise<number> {
  const [, n] = (await admin.call('PUBSUB', 'SHARDNUMSUB', channel(`chat-messages:{${chatId}}`))) as [string, number];
  return n;
}

const messagesOf = (s: TestSocket, chatId: string) =>
  s.frames.filter((f: Frame) => f.type === 'message' && (f.message as { chatId: string }).chatId === chatId);

describe('a member removed while the api resubscribes', () => {
  let owner: TestUser, removed: TestUser, staying: TestUser;
  let chat: { id: string }, other: { id: string };
  beforeAll(async () => {
    [owner, removed, staying] = await Promise.all([
      http.newUser('owner'),
      http.newUser('removed'),
      http.newUser('staying'),
    ]);
    chat = await http.newChat(owner, [removed, staying]);
    other = await http.newChat(owner, [removed]);
  });

  it("gets none of the chat's next messages, while the remaining members do", async () => {
    const removedSocket = await connectClient(api.url, removed.token);
    const stayingSocket = await connectClient(api.url, staying.token);

    // No new connection from here on, so the killed subscriber cannot come back yet.
    const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
    await admin.config('SET', 'maxclients', String(connected - 1));
    const ids = await subscriberIds();
    expect(ids).toHaveLength(2);
    for (const id of ids) await admin.client('KILL', 'ID', id);
    expect(await subscriberIds()).toEqual([]);

    const r = await http.request('DELETE', `/api/chats/${chat.id}/members/${removed.user.id}`, undefined, owner.token);
    expect(r.status).toBe(204);
    // Published to nobody: the api never hears of the removal.
    expect(await subscribers('membership')).toBe(0);

    await admin.config('SET', 'maxclients', '10000');
    await waitFor(
      async () => (await chatSubscribers(chat.id)) === 1 && (await subscribers('membership')) === 1,
      'the api subscribed again',
    );

    const next = await http.send(owner.token, chat.id, 'after the removal');
    expect(next.status).toBe(201);
    await stayingSocket.next(messageWithId(next.body.message.id), 'the next message');
    // Published after it on the same channel: once this arrived, the first would have too.
    const marker = await http.send(owner.token, other.id, 'marker');
    await removedSocket.next(messageWithId(marker.body.message.id), 'the marker');

    expect(messagesOf(removedSocket, chat.id)).toEqual([]);
    expect(removedSocket.ws.readyState).toBe(removedSocket.ws.OPEN);
    await Promise.all([removedSocket.close(), stayingSocket.close()]);
  });
});

describe('a member removed while Redis is away', () => {
  it("gets none of the chat's messages sent through PostgreSQL meanwhile, while the remaining members do", async () => {
    const [owner, removed, staying] = await Promise.all([
      http.newUser('owner'),
      http.newUser('removed'),
      http.newUser('staying'),
    ]);
    const chat = await http.newChat(owner, [removed, staying]);
    const other = await http.newChat(owner, [removed]);
    const removedSocket = await connectClient(api.url, removed.token);
    const stayingSocket = await connectClient(api.url, staying.token);

    await redis.kill();
    await waitFor(async () => (await http.request('GET', '/readyz')).body.mode === 'degraded', 'degraded mode');
    // PostgreSQL has the removal; with no Redis, nobody is told.
    expect(
      (await http.request('DELETE', `/api/chats/${chat.id}/members/${removed.user.id}`, undefined, owner.token)).status,
    ).toBe(204);

    const next = await http.send(owner.token, chat.id, 'sent through PostgreSQL');
    expect(next.status).toBe(201);
    await stayingSocket.next(messageWithId(next.body.message.id), 'the next message');
    const marker = await http.send(owner.token, other.id, 'marker');
    await removedSocket.next(messageWithId(marker.body.message.id), 'the marker');
    expect(messagesOf(removedSocket, chat.id)).toEqual([]);
    await Promise.all([removedSocket.close(), stayingSocket.close()]);
  });
});
