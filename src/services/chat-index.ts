import { randomUUID } from 'node:crypto';
import { isUnavailableError } from '../domain/errors.js';
import { keyNodes, type RedisClient, unlinkKeys } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { scanKeys } from '../redis/scan.js';
import type { Scripts } from '../redis/scripts.js';
import type { ChatStore } from '../stores/chat-store.js';

export interface ChatIndexDeps {
  chats: Pick<ChatStore, 'chatIdsOf'>;
  redis: RedisClient;
  scripts: Pick<Scripts, 'userChatsFill' | 'cacheInvalidate'>;
  keys: Pick<Keys, 'userChats' | 'userChatsVersion'>;
  ttlSeconds: number;
}

/**
 * Which chats a connecting user receives. PostgreSQL is the truth; each answer is also kept in
 * Redis so that users can still connect while PostgreSQL is down.
 *
 * The copy is written after the answer returns, so a membership change can commit between the
 * read and the write. Each change replaces the user's version token before and after its commit
 * (`invalidate`), and the copy is written only if the token read before the query is unchanged:
 * a copy never outlives a change it does not include.
 */
export function createChatIndex(deps: ChatIndexDeps) {
  const { keys } = deps;

  return {
    async chatIdsOf(userId: string): Promise<string[]> {
      // Read before PostgreSQL: a change after this point replaces it. No token (Redis away): no copy.
      const token = await deps.redis.get(keys.userChatsVersion(userId)).then(
        (t) => t ?? '',
        () => null,
      );
      try {
        const ids = await deps.chats.chatIdsOf(userId);
        if (token !== null) {
          deps.scripts
            .userChatsFill(
              [keys.userChats(userId), keys.userChatsVersion(userId)],
              token,
              deps.ttlSeconds,
              JSON.stringify(ids),
            )
            .catch(() => undefined);
        }
        return ids;
      } catch (err) {
        if (!isUnavailableError(err)) throw err;
        const cached = await deps.redis.get(keys.userChats(userId)).catch(() => null);
        if (cached === null) throw err;
        return JSON.parse(cached) as string[];
      }
    },

    /** Drops every copy (after Redis was unreachable, changes may have been missed). */
    async dropAll(): Promise<void> {
      for await (const found of scanKeys(keyNodes(deps.redis), keys.userChats('*')))
        await unlinkKeys(deps.redis, found);
    },

    /** Forgets the users' copies and outdates any fill in flight (before and after a change's commit). */
    async invalidate(userIds: readonly string[]): Promise<void> {
      await Promise.all(
        userIds.map((u) =>
          deps.scripts.cacheInvalidate([keys.userChats(u), keys.userChatsVersion(u)], randomUUID(), deps.ttlSeconds),
        ),
      );
    },
  };
}

export type ChatIndex = ReturnType<typeof createChatIndex>;
