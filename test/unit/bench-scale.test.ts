import { describe, expect, it } from 'vitest';
import { parseCli } from '../../bench/cli.js';
import { chatsHeld, expectedPerApi, placeClients } from '../../bench/placement.js';
import { parseMetrics } from '../../bench/prom.js';
import { mergeCommandStats, parseCommandStats } from '../../bench/redis-stats.js';
import { scaleLines } from '../../bench/report-lines.js';
import { apiCounters, inboundMismatches, scaleOf } from '../../bench/scale.js';
import { processEnv } from '../../bench/setup.js';

/** The bench's world: `clients` users in chats of `size` consecutive users (accounts.ts createChats). */
function chatOfClients(clients: number, size: number): Int32Array {
  const chatOf = new Int32Array(clients);
  for (let i = 0; i < clients; i++) chatOf[i] = Math.floor(i / size);
  return chatOf;
}

describe('bench placement: which api each client connects to', () => {
  it('spreads client i on api i % apis by default, so every api holds members of every chat', () => {
    const chatOf = chatOfClients(200, 10);
    const apiOf = placeClients(chatOf, 3, false);
    expect([...apiOf.slice(0, 7)]).toEqual([0, 1, 2, 0, 1, 2, 0]);
    const held = chatsHeld(chatOf, apiOf, 3);
    for (const chats of held) expect(chats).toHaveLength(20);
    // Inbound per api would then be the system's total: nothing to see.
    const perChat = Array.from({ length: 20 }, () => 500);
    expect(expectedPerApi(held, perChat)).toEqual([10_000, 10_000, 10_000]);
  });

  it('with affinity puts every member of chat c on api c % apis: each api holds a disjoint subset of the chats', () => {
    const chatOf = chatOfClients(200, 10);
    const apiOf = placeClients(chatOf, 3, true);
    for (let i = 0; i < 200; i++) expect(apiOf[i]).toBe(chatOf[i]! % 3);
    const held = chatsHeld(chatOf, apiOf, 3);
    expect(held.map((c) => c.length)).toEqual([7, 7, 6]);
    expect(held[0]).toEqual([0, 3, 6, 9, 12, 15, 18]);
    expect(new Set(held.flat()).size).toBe(20);
    expect(held.flat()).toHaveLength(20);
    // Chat c carried c + 1 messages: api 0 holds chats 0, 3, ..., 18.
    const perChat = Array.from({ length: 20 }, (_, c) => c + 1);
    const expected = expectedPerApi(held, perChat);
    expect(expected[0]).toBe(1 + 4 + 7 + 10 + 13 + 16 + 19);
    expect(expected.reduce((a, b) => a + b, 0)).toBe(210);
  });

  it('with one api, or more apis than chats, places everyone somewhere valid', () => {
    const chatOf = chatOfClients(20, 10);
    expect([...placeClients(chatOf, 1, true)]).toEqual(new Array(20).fill(0));
    const held = chatsHeld(chatOf, placeClients(chatOf, 3, true), 3);
    expect(held).toEqual([[0], [1], []]);
    expect(() => placeClients(chatOf, 0, false)).toThrow(/apis/);
  });
});

describe('bench scale figures', () => {
  const metrics = (message: number, updated: number, persisted: number, frames: number) =>
    parseMetrics(
      [
        '# HELP parley_fanout_received_total x',
        '# TYPE parley_fanout_received_total counter',
        `parley_fanout_received_total{kind="message"} ${message}`,
        `parley_fanout_received_total{kind="updated"} ${updated}`,
        `parley_fanout_received_total{kind="persisted"} ${persisted}`,
        `parley_fanout_frames_total ${frames}`,
        `parley_fanout_messages_total ${message}`,
      ].join('\n'),
    );

  it("reads an api's inbound chat payloads by kind and its frames written as /metrics deltas", () => {
    expect(apiCounters(metrics(100, 5, 20, 900), metrics(3600, 5, 90, 35_900))).toEqual({
      received: { message: 3500, updated: 0, persisted: 70 },
      framesWritten: 35_000,
    });
    expect(apiCounters(null, metrics(1, 1, 1, 1))).toBeNull();
  });

  it('charges each api with its own deliveries, each worker and the servers together with all of them', () => {
    const chatOf = chatOfClients(40, 10); // 4 chats
    const apiOf = placeClients(chatOf, 2, true); // chats 0, 2 on api1; 1, 3 on api2
    const s = scaleOf({
      windowMs: 10_123.4,
      chatOf,
      apiOf,
      apiLabels: ['api1', 'api2'],
      ackedByChat: [100, 200, 300, 400],
      changesAckedByChat: null,
      deliveredByApi: [4000, 6000],
      counters: [
        apiCounters(metrics(0, 0, 0, 0), metrics(400, 0, 10, 4000)),
        apiCounters(metrics(0, 0, 0, 0), metrics(600, 0, 12, 6000)),
      ],
      cpu: [
        { label: 'api1', cpuSeconds: 0.4 },
        { label: 'api2', cpuSeconds: 0.9 },
        { label: 'worker1', cpuSeconds: 0.2 },
      ],
    });
    expect(s).toMatchObject({ windowMs: 10_123, messages: 1000, delivered: 10_000, chats: 4, fanoutFactor: 10 });
    expect(s.apis).toEqual([
      {
        label: 'api1',
        chats: 2,
        received: { message: 400, updated: 0, persisted: 10 },
        expectedMessages: 400,
        expectedUpdated: null,
        framesWritten: 4000,
        delivered: 4000,
      },
      {
        label: 'api2',
        chats: 2,
        received: { message: 600, updated: 0, persisted: 12 },
        expectedMessages: 600,
        expectedUpdated: null,
        framesWritten: 6000,
        delivered: 6000,
      },
    ]);
    expect(s.processes).toEqual([
      { label: 'api1', cpuSeconds: 0.4, delivered: 4000, cpuUsPerDelivered: 100, cpuUsPerMessage: 400 },
      { label: 'api2', cpuSeconds: 0.9, delivered: 6000, cpuUsPerDelivered: 150, cpuUsPerMessage: 900 },
      { label: 'worker1', cpuSeconds: 0.2, delivered: 10_000, cpuUsPerDelivered: 20, cpuUsPerMessage: 200 },
      { label: 'servers', cpuSeconds: 1.5, delivered: 10_000, cpuUsPerDelivered: 150, cpuUsPerMessage: 1500 },
    ]);
    expect(inboundMismatches(s)).toEqual([]);
    const text = scaleLines(s).join('\n');
    expect(text).toContain(
      "api1: members of 2 of 4 chats · from Redis 400 messages (its chats' 400, the system's 1,000)",
    );
    expect(text).toContain('worker1 0.20 s: 20.0 µs per delivered message (200 per message)');
    expect(text).not.toContain('inbound is not');
  });

  it('says so when an api received more than its chats carried (every message on every api), and leaves out what it cannot read', () => {
    const chatOf = chatOfClients(20, 10);
    const apiOf = placeClients(chatOf, 2, true);
    const s = scaleOf({
      windowMs: 1000,
      chatOf,
      apiOf,
      apiLabels: ['api1', 'api2'],
      ackedByChat: [10, 30],
      changesAckedByChat: [1, 2],
      deliveredByApi: [100, 300],
      counters: [apiCounters(metrics(0, 0, 0, 0), metrics(40, 3, 0, 100)), null],
      cpu: [
        { label: 'api1', cpuSeconds: 0.1 },
        { label: 'api2', cpuSeconds: null },
      ],
    });
    expect(s.apis[0]).toMatchObject({
      expectedMessages: 10,
      expectedUpdated: 1,
      received: { message: 40, updated: 3 },
    });
    expect(s.apis[1]).toMatchObject({ received: null, framesWritten: null, expectedUpdated: 2 });
    expect(inboundMismatches(s)).toEqual([
      'api1 received 40 chat messages from Redis, its 1 chats had 10 (the system 40)',
    ]);
    expect(s.processes.at(-1)).toMatchObject({ label: 'servers', cpuSeconds: null, cpuUsPerDelivered: null });
    expect(scaleLines(s).join('\n')).toContain("inbound is not its chats' traffic: api1 received 40");
  });
});

describe('bench --redis-cluster and --chat-affinity', () => {
  it('parses both; a cluster run measures Parley alone and starts its own processes', () => {
    expect(parseCli(['--scenario', 'small'])).toMatchObject({
      redisCluster: false,
      chatAffinity: false,
      target: 'both',
    });
    expect(parseCli(['--redis-cluster', '--apis', '3', '--chat-affinity'])).toMatchObject({
      redisCluster: true,
      chatAffinity: true,
      apis: 3,
      target: 'parley',
    });
    expect(parseCli(['--chat-affinity', '--apis', '2'])).toMatchObject({ chatAffinity: true, target: 'both' });
    expect(() => parseCli(['--redis-cluster', '--target', 'both'])).toThrow(/not --redis-cluster/);
    expect(() => parseCli(['--redis-cluster', '--target', 'floor'])).toThrow(/not --redis-cluster/);
    expect(() => parseCli(['--redis-cluster', '--url', 'http://127.0.0.1:3000'])).toThrow(/not with --url/);
    expect(() => parseCli(['--scenario', 'idle', '--chat-affinity'])).toThrow(/no chats/);
  });

  it("gives the processes the cluster's seeds instead of REDIS_URL, and no password", () => {
    const common = { databaseUrl: 'postgres://x/db', keyPrefix: 'bench1:', queuePrefix: '{bench1}' };
    const cluster = processEnv({
      ...common,
      redis: { REDIS_CLUSTER_NODES: '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003' },
      overrides: { PERSIST_SHARDS: '8' },
    });
    expect(cluster).toMatchObject({
      REDIS_CLUSTER_NODES: '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003',
      REDIS_PASSWORD: '',
      DATABASE_URL: 'postgres://x/db',
      REDIS_KEY_PREFIX: 'bench1:',
      QUEUE_PREFIX: '{bench1}',
      PERSIST_SHARDS: '8',
    });
    expect(cluster).not.toHaveProperty('REDIS_URL');
    const single = processEnv({ ...common, redis: { REDIS_URL: 'redis://127.0.0.1:6379' }, overrides: {} });
    expect(single).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(single).not.toHaveProperty('REDIS_CLUSTER_NODES');
    expect(single).not.toHaveProperty('REDIS_PASSWORD');
  });

  it("adds up the masters' command statistics", () => {
    const a = parseCommandStats(
      'cmdstat_evalsha:calls=10,usec=500,usec_per_call=50\r\ncmdstat_spublish:calls=4,usec=8\r\n',
    );
    const b = parseCommandStats('cmdstat_evalsha:calls=5,usec=100,usec_per_call=20\r\ncmdstat_get:calls=1,usec=1\r\n');
    expect(mergeCommandStats([a, b])).toEqual(
      new Map([
        ['evalsha', { calls: 15, usec: 600 }],
        ['spublish', { calls: 4, usec: 8 }],
        ['get', { calls: 1, usec: 1 }],
      ]),
    );
    expect(a.get('evalsha')).toEqual({ calls: 10, usec: 500 }); // the inputs are left alone
  });
});
