import type { Redis } from 'ioredis';
import { AppError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import { scanKeys } from '../redis/scan.js';
import type { ChatStore } from '../stores/chat-store.js';

/** A membership change, published so that every api process updates its chat → sockets index. */
export interface MembershipChange {
  chatId: string;
  userIds: string[];
  change: 'added' | 'removed';
}

export interface MembershipServiceDeps {
  redis: Redis;
  keys: Keys;
  chats: ChatStore;
  ttlSeconds: number;
}

/**
 * The member set of each chat is cached in Redis (`chat:{id}:members`, with '' as a "loaded"
 * sentinel) so that the send script checks membership in the same round trip as the seq.
 * PostgreSQL is the truth: every change writes it first, then drops the cached set, which the next
 * reader reloads.
 */
export function createMembershipService(deps: MembershipServiceDeps) {
  const { redis, keys } = deps;

  async function load(chatId: string): Promise<string[]> {
    const ids = await deps.chats.memberIds(chatId);
    if (ids === null) throw new AppError('not_found', 'no such chat');
    const key = keys.members(chatId);
    await redis.multi().del(key).sadd(key, '', ...ids).expire(key, deps.ttlSeconds).exec();
    return ids;
  }

  return {
    /** Fills the cached member set from PostgreSQL; `not_found` when the chat does not exist. */
    load,

    /** Throws `not_found` (no chat) or `forbidden` (not a member); falls back to PostgreSQL. */
    async requireMember(chatId: string, userId: string): Promise<void> {
      let member: boolean;
      try {
        const [isMember, exists] = await Promise.all([
          redis.sismember(keys.members(chatId), userId),
          redis.exists(keys.members(chatId)),
        ]);
        member = exists ? isMember === 1 : (await load(chatId)).includes(userId);
      } catch (err) {
        if (err instanceof AppError) throw err;
        const ids = await deps.chats.memberIds(chatId);
        if (ids === null) throw new AppError('not_found', 'no such chat');
        member = ids.includes(userId);
      }
      if (!member) throw new AppError('forbidden', 'not a member of this chat');
    },

    /** Drops every cached member set (after Redis was unreachable, changes may have been missed). */
    async dropCaches(): Promise<void> {
      for await (const found of scanKeys([redis], keys.members('*'))) await redis.unlink(...found);
    },

    /** After a change in PostgreSQL: drop the cache and tell every api process. */
    async changed(change: MembershipChange): Promise<void> {
      await redis.del(keys.members(change.chatId), ...change.userIds.map((u) => keys.userChats(u)));
      await redis.publish(keys.channels.membership, JSON.stringify(change));
    },
  };
}

export type MembershipService = ReturnType<typeof createMembershipService>;
