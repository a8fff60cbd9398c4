import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Chat ids are UUIDs; anything else under a chat pattern is not one of ours. */
export const isChatId = (id: string | null): id is string => id !== null && UUID.test(id);

/** The chat keys whose presence means a chat has state worth managing. */
const MANAGED_SUFFIXES = [':messages:active', ':seq', ':pending'];

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

/**
 * The ids of chats that have an active list, a seq counter or a pending set under this prefix,
 * each once, in batches of at most `batchSize`.
 */
export async function* scanChatIds(nodes: readonly Redis[], keys: Keys, batchSize = 100): AsyncGenerator<string[]> {
  const seen = new Set<string>();
  let batch: string[] = [];
  for await (const found of scanKeys(nodes, keys.chatKeysPattern())) {
    for (const key of found) {
      if (!MANAGED_SUFFIXES.some((s) => key.endsWith(s))) continue;
      const chatId = keys.chatIdOfKey(key);
      if (!isChatId(chatId) || seen.has(chatId)) continue;
      seen.add(chatId);
      batch.push(chatId);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}
