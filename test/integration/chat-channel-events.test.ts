import { type Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatEventPayload, parseChatEvent, parsePresenceEvent, payloadUserId } from '../../src/domain/events.js';
import { typingFrame } from '../../src/domain/frames.js';
import { createRedisCluster } from '../../src/infra/clients.js';
import { clusterKeySlot } from '../../src/infra/cluster-slot.js';
import { CHAT_PAYLOAD } from '../../src/message-log/keys.js';
import { duplicateClient, pipelineBySlot } from '../../src/redis/client.js';
import { createKeys, type Keys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import { createPresenceState } from '../../src/services/presence-state.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * What carries typing, read and presence events on the chats' sharded channels, on a single Redis
 * and on a Redis Cluster of three masters: pipelineBySlot (on a cluster one pipeline per node
 * slot: one across nodes is refused), a presence transition SPUBLISHed on every chat
 * of the user whatever master serves it, and typing.lua and read-advance.lua SPUBLISHing on the
 * chat's channel from inside a script on the chat's keys.
 */
type Client = Redis | Cluster;

/** Sharded messages a subscriber receives, by channel. */
function collect(subscriber: Client): Map<string, string[]> {
  const got = new Map<string, string[]>();
  subscriber.on('smessage', (channel: string, message: string) => {
    got.set(channel, [...(got.get(channel) ?? []), message]);
  });
  return got;
}

/** Chat ids whose channels spread over many slots (every master of a 3-master cluster among them). */
const chatIds = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

function checks(name: string, make: () => Promise<{ commands: Client; subscriber: Client; keys: Keys }>) {
  describe(name, () => {
    let commands: Client, subscriber: Client, keys: Keys;
    let got: Map<string, string[]>;
    beforeAll(async () => {
      ({ commands, subscriber, keys } = await make());
      got = collect(subscriber);
    });

    it('runs one command per item, a pipeline per slot on a cluster, with each outcome in the items’ order', async () => {
      const items = chatIds('pipe', 30).map((chatId) => keys.seq(chatId));
      expect(new Set(items.map(clusterKeySlot)).size).toBe(30);
      await commands.set(items[7]!, 'not a number');
      // Counts the pipelines the helper opens (the client's own method, wrapped for this call).
      let pipelines = 0;
      const open = commands.pipeline.bind(commands);
      commands.pipeline = ((...args: Parameters<typeof open>) => (pipelines++, open(...args))) as typeof open;
      const results = await pipelineBySlot(
        commands,
        items,
        (key) => key,
        (p, key) => (p.incrby(key, 5), 1),
      ).finally(() => (commands.pipeline = open));
      // On a single Redis all in one; on a cluster one per master holding some of the 30 slots.
      expect(pipelines).toBe(commands.isCluster ? 3 : 1);
      const outcomes = results.map((r) => r[0]!);
      expect(outcomes.map(([err]) => err === null)).toEqual(items.map((_, i) => i !== 7));
      expect(outcomes[7]![0]?.message).toMatch(/not an integer/);
      expect(outcomes.filter((_, i) => i !== 7).map(([, r]) => r)).toEqual(items.slice(1).map(() => 5));
      expect(await pipelineBySlot(commands, [], String, () => 0)).toEqual([]);
    });

    it('publishes a presence transition on each chat of the user, one copy each with one change id', async () => {
      const chats = chatIds('presence', 12);
      for (const chatId of chats) await subscriber.ssubscribe(keys.channels.chat(chatId));
      const state = createPresenceState({
        redis: commands,
        scripts: createScripts(commands),
        keys,
        ttlMs: 1000,
      });
      const lastSeenAt = new Date().toISOString();
      await state.publish({ userId: 'u-1', status: 'online', lastSeenAt, chatIds: chats });
      await state.publish({ userId: 'u-1', status: 'offline', lastSeenAt, chatIds: chats });
      await waitFor(() => chats.every((c) => got.get(keys.channels.chat(c))?.length === 2), 'two copies on each chat');
      const ids: string[][] = [[], []];
      for (const chatId of chats) {
        const copies = got.get(keys.channels.chat(chatId)) ?? [];
        for (const [i, payload] of copies.entries()) {
          expect(payload.startsWith(`${CHAT_PAYLOAD.presence} `)).toBe(true);
          const event = parsePresenceEvent(payload.slice(2));
          expect(event?.userId).toBe('u-1');
          expect(JSON.parse(event?.frame ?? '')).toEqual({
            type: 'presence',
            userId: 'u-1',
            status: i === 0 ? 'online' : 'offline',
            lastSeenAt,
          });
          ids[i]!.push(event?.changeId ?? '');
        }
      }
      // One id per transition, the same on every chat, another for the next transition.
      expect(new Set(ids[0]).size).toBe(1);
      expect(new Set(ids[1]).size).toBe(1);
      expect(ids[0]![0]).not.toBe(ids[1]![0]);
      await state.publish({ userId: 'u-1', status: 'online', lastSeenAt, chatIds: [] });
    });

    it('forwards typing and read events from inside their scripts, on the chat’s own channel', async () => {
      const scripts = createScripts(commands);
      const chats = chatIds('events', 6);
      for (const chatId of chats) await subscriber.ssubscribe(keys.channels.chat(chatId));
      for (const chatId of chats) {
        const payload = `${CHAT_PAYLOAD.event} ${chatEventPayload(chatId, 'typer', typingFrame(chatId, 'typer'))}`;
        expect(
          await scripts.typing(
            [keys.typing(chatId, 'typer'), keys.typingGate(chatId, 'typer')],
            5000,
            1000,
            keys.channels.chat(chatId),
            payload,
          ),
        ).toBe(1);
        await commands.set(keys.seq(chatId), '9');
        expect(
          await scripts.readAdvance(
            [keys.reads(chatId), keys.seq(chatId)],
            // An opaque id with a space: the payload carries it percent-encoded, the frame as JSON.
            [
              'the reader',
              4,
              0,
              60,
              keys.channels.chat(chatId),
              chatId,
              '',
              CHAT_PAYLOAD.event,
              payloadUserId('the reader'),
            ],
          ),
        ).toEqual(['OK', 4]);
      }
      await waitFor(
        () => chats.every((c) => got.get(keys.channels.chat(c))?.length === 2),
        'a typing and a read event on each chat',
      );
      for (const chatId of chats) {
        const events = (got.get(keys.channels.chat(chatId)) ?? []).map((p) => {
          expect(p.startsWith(`${CHAT_PAYLOAD.event} `)).toBe(true);
          return parseChatEvent(p.slice(2));
        });
        expect(events).toEqual([
          { chatId, userId: 'typer', frame: typingFrame(chatId, 'typer') },
          { chatId, userId: 'the reader', frame: `{"type":"read","chatId":"${chatId}","userId":"the reader","seq":4}` },
        ]);
      }
    });
  });
}

let env: TestEnv;
let clusterEnv: TestEnv;
const clients: Client[] = [];

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await clusterEnv?.cleanup();
  await env?.cleanup();
});

checks('on a single Redis', async () => {
  env = await createTestEnv();
  const subscriber = duplicateClient(env.redis, 'subscriber');
  clients.push(subscriber);
  return { commands: env.redis, subscriber, keys: createKeys(env.config.REDIS_KEY_PREFIX) };
});

checks('on a Redis Cluster of three masters', async () => {
  // The run's local cluster (global-setup.ts), under a key prefix of this file's own.
  clusterEnv = await createTestEnv({}, { redis: 'cluster' });
  const config = clusterEnv.config;
  const [commands, subscriber] = (['command', 'subscriber'] as const).map((role) => {
    const c = createRedisCluster(config, role, 'chat-events');
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  });
  await Promise.all([commands!, subscriber!].map((c) => new Promise((resolve) => c.once('ready', resolve))));
  // The same work as one pipeline is refused: its keys live on several masters.
  const seqs = chatIds('pipe', 30).map((chatId) => `{${chatId}}:probe`);
  const one = commands!.pipeline();
  for (const key of seqs) one.get(key);
  await expect(one.exec()).rejects.toThrow(/same slots allocation group/);
  return { commands: commands!, subscriber: subscriber!, keys: createKeys(config.REDIS_KEY_PREFIX) };
});
