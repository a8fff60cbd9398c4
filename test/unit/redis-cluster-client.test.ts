import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { clusterOptions, createRedisCluster, parseClusterSeed } from '../../src/infra/clients.js';
import { CLUSTER_SLOTS, clusterKeySlot } from '../../src/infra/cluster-slot.js';

/**
 * What of the Redis Cluster clients can be checked without a cluster (the harness test,
 * test/integration/redis-cluster-harness.test.ts, runs them on one).
 */
describe('the Redis Cluster clients', () => {
  const config = loadConfig({
    REDIS_CLUSTER_NODES: '10.0.0.1:7000,[::1]:7001',
    REDIS_PASSWORD: 'sekret',
    REDIS_CONNECT_TIMEOUT: '1234',
    REDIS_COMMAND_TIMEOUT: '567',
  });

  it('reads host:port and [v6]:port seeds', () => {
    expect(config.REDIS_CLUSTER_NODES?.map(parseClusterSeed)).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '::1', port: 7001 },
    ]);
  });

  it('gives every role the single-Redis clients settings: connect timeout, password, name, no auto-pipelining, reads on masters', () => {
    for (const role of ['command', 'subscriber', 'queue'] as const) {
      const o = clusterOptions(config, role, 'api');
      expect(o.redisOptions).toMatchObject({ connectionName: `api:${role}`, connectTimeout: 1234, password: 'sekret' });
      expect(o).toMatchObject({ scaleReads: 'master', enableReadyCheck: true, enableAutoPipelining: false });
      // Reconnects fast, then every 500 ms.
      expect([1, 2, 10].map((t) => o.clusterRetryStrategy?.(t))).toEqual([100, 200, 500]);
    }
    expect(clusterOptions(loadConfig({}), 'command').redisOptions).not.toHaveProperty('password');
  });

  it('fails fast on the command role; retries forever on the subscriber and queue roles (BullMQ requires it)', () => {
    const command = clusterOptions(config, 'command');
    expect(command).toMatchObject({ enableOfflineQueue: false, maxRedirections: 3 });
    expect(command.redisOptions).toMatchObject({ commandTimeout: 567, maxRetriesPerRequest: 0 });
    for (const role of ['subscriber', 'queue'] as const) {
      const o = clusterOptions(config, role);
      expect(o.enableOfflineQueue).toBe(true);
      expect(o.maxRedirections).toBeUndefined();
      expect(o.redisOptions?.maxRetriesPerRequest).toBeNull();
      expect(o.redisOptions).not.toHaveProperty('commandTimeout');
    }
  });

  it('subscribes on sharded subscribers (SSUBSCRIBE on each slot master) on the subscriber role only', () => {
    expect(clusterOptions(config, 'subscriber').shardedSubscribers).toBe(true);
    expect(clusterOptions(config, 'command').shardedSubscribers).toBe(false);
    expect(clusterOptions(config, 'queue').shardedSubscribers).toBe(false);
  });

  it('refuses to build a cluster client without REDIS_CLUSTER_NODES', () => {
    expect(() => createRedisCluster(loadConfig({}), 'command')).toThrow(/REDIS_CLUSTER_NODES is not set/);
  });
});

/** CLUSTER KEYSLOT's answers on Redis 7.0.15. */
const KEYSLOT: Record<string, number> = { '{}{a}': 13650, 'foo{': 7673, 'foo{}bar': 14292 };

describe('clusterKeySlot', () => {
  it("is Redis Cluster's CRC16 slot (the spec's test vector and known slots)", () => {
    expect(clusterKeySlot('123456789')).toBe(0x31c3);
    expect(clusterKeySlot('foo')).toBe(12182);
    expect(clusterKeySlot('bar')).toBe(5061);
    expect(clusterKeySlot('')).toBe(0);
    expect(clusterKeySlot(new TextEncoder().encode('foo'))).toBe(12182);
  });

  it('hashes only the first hash tag with something in it', () => {
    expect(clusterKeySlot('{user1000}.following')).toBe(clusterKeySlot('user1000'));
    expect(clusterKeySlot('chat:{c1}:log')).toBe(clusterKeySlot('c1'));
    expect(clusterKeySlot('{a}{b}')).toBe(clusterKeySlot('a'));
    // An empty first tag, or a `{` never closed: the whole key (slots from CLUSTER KEYSLOT on 7.0.15).
    expect(clusterKeySlot('{}{a}')).not.toBe(clusterKeySlot('a'));
    expect(clusterKeySlot('{}{a}')).toBe(KEYSLOT['{}{a}']);
    expect(clusterKeySlot('foo{')).toBe(KEYSLOT['foo{']);
    expect(clusterKeySlot('foo{}bar')).toBe(KEYSLOT['foo{}bar']);
  });

  it('stays within the 16384 slots', () => {
    for (let i = 0; i < 2000; i++) {
      const slot = clusterKeySlot(`chat:${i}:é`);
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(CLUSTER_SLOTS);
    }
  });
});
