import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { queueShards, shardFor, shardOf } from '../../src/queues/shards.js';

describe('shardOf', () => {
  it('is the same for the same id, every time (FNV-1a of the UTF-8 bytes, pinned)', () => {
    // FNV-1a 32 of "a" is 0xe40c292c, of "foobar" 0xbf9cf968 (the published test vectors).
    expect(shardOf('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(shardOf('foobar', 1000)).toBe(0xbf9cf968 % 1000);
    const id = randomUUID();
    expect(Array.from({ length: 5 }, () => shardOf(id, 7))).toEqual(Array(5).fill(shardOf(id, 7)));
  });

  it('is 0 with one shard', () => {
    for (let i = 0; i < 100; i++) expect(shardOf(randomUUID(), 1)).toBe(0);
  });

  it('spreads chat ids evenly over the shards', () => {
    for (const shards of [2, 3, 8]) {
      const counts = Array<number>(shards).fill(0);
      const n = 30_000;
      for (let i = 0; i < n; i++) {
        const shard = shardOf(randomUUID(), shards);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
        counts[shard]! += 1;
      }
      // Each within 10 % of its share (a uniform hash is within ~2 % here).
      for (const c of counts) expect(Math.abs(c - n / shards)).toBeLessThan((n / shards) * 0.1);
    }
  });

  it('picks the member of a list by the id', () => {
    const id = randomUUID();
    expect(shardFor(['a', 'b', 'c'], id)).toBe(['a', 'b', 'c'][shardOf(id, 3)]);
    expect(() => shardFor([], id)).toThrow();
  });
});

describe('queueShards', () => {
  it("keeps today's queue name and prefix with one shard", () => {
    expect(queueShards('persist', '{parley}', 1)).toEqual([{ name: 'persist', prefix: '{parley}' }]);
  });

  it('gives every shard its own name and a prefix whose first hash tag is its own', () => {
    const shards = queueShards('persist', '{parley}', 3);
    expect(shards).toEqual([
      { name: 'persist-0', prefix: '{parley-persist-0}' },
      { name: 'persist-1', prefix: '{parley-persist-1}' },
      { name: 'persist-2', prefix: '{parley-persist-2}' },
    ]);
    // BullMQ's keys are `${prefix}:${name}:...`; a Redis Cluster hashes the first {...} of a key.
    const tags = shards.map((s) => /\{([^}]*)\}/.exec(`${s.prefix}:${s.name}:wait`)?.[1]);
    expect(new Set(tags).size).toBe(3);
    expect(tags).not.toContain('parley');
  });
});
