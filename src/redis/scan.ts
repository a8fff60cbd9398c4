import type { Redis } from 'ioredis';

/**
 * Every key matching `pattern` on the nodes given, in batches as SCAN returns them. SCAN walks one
 * node's keyspace, so on Redis Cluster pass every master (`cluster.nodes('master')`); a key may
 * come twice (SCAN's guarantee during rehashing), so callers must be idempotent.
 */
export async function* scanKeys(nodes: readonly Redis[], pattern: string, count = 1000): AsyncGenerator<string[]> {
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}
