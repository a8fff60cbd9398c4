import type { Redis } from 'ioredis';
import { isUnavailableError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { ChatStore } from '../stores/chat-store.js';

/**
 * Which chats a connecting user receives. PostgreSQL is the truth; each answer is also kept in
 * Redis (dropped on membership changes) so that users can still connect while PostgreSQL is down.
 */
export function createChatIndex(deps: { chats: ChatStore; redis: Redis; keys: Keys; ttlSeconds: number }) {
  return {
    async chatIdsOf(userId: string): Promise<string[]> {
      try {
        const ids = await deps.chats.chatIdsOf(userId);
        deps.redis.set(deps.keys.userChats(userId), JSON.stringify(ids), 'EX', deps.ttlSeconds).catch(() => undefined);
        return ids;
      } catch (err) {
        if (!isUnavailableError(err)) throw err;
        const cached = await deps.redis.get(deps.keys.userChats(userId)).catch(() => null);
        if (cached === null) throw err;
        return JSON.parse(cached) as string[];
      }
    },
  };
}
