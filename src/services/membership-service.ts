import { randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { MembershipChange } from '../domain/events.js';
import { CHAT_PAYLOAD } from '../message-log/keys.js';
import { keyNodes, type RedisClient, unlinkKeys } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { scanKeys } from '../redis/scan.js';
import type { Scripts } from '../redis/scripts.js';
import type { ChatStore } from '../stores/chat-store.js';
import type { ChatIndex } from './chat-index.js';

export interface MembershipServiceDeps {
  redis: RedisClient;
  keys: Keys;
  scripts: Pick<Scripts, 'membersFill' | 'cacheInvalidate'>;
  chats: Pick<ChatStore, 'memberIds'>;
  /** The users' chat-id copies (chat index), outdated with every change that concerns them. */
  userChats: Pick<ChatIndex, 'invalidate' | 'dropAll'>;
  ttlSeconds: number;
}

/**
 * The member set of each chat is cached in Redis (`chat:{id}:members`, with '' as a "loaded"
 * sentinel) so that the send script checks membership in the same round trip as the seq.
 * PostgreSQL is the truth. A fill reads PostgreSQL and then writes the set, so a change can commit
 * in between; every change therefore replaces the chat's version token before and after its
 * commit (dropping the set each time), and a fill writes only if the token it read before
 * querying PostgreSQL is still there (members-fill.lua). A fill that lost the race writes nothing
 * and the next reader loads again: a removal is never undone by an older read.
 */
export function createMembershipService(deps: MembershipServiceDeps) {
  const { redis, keys } = deps;

  async function load(chatId: string): Promise<string[]> {
    const token = (await redis.get(keys.membersVersion(chatId))) ?? '';
    const ids = await deps.chats.memberIds(chatId);
    if (ids === null) throw new AppError('not_found', 'no such chat');
    await deps.scripts.membersFill([keys.members(chatId), keys.membersVersion(chatId)], token, deps.ttlSeconds, ids);
    return ids;
  }

  /** Drops the chat's set and its members' chat-id copies, outdating any fill in flight. */
  async function invalidate(change: MembershipChange): Promise<void> {
    await Promise.all([
      deps.scripts.cacheInvalidate(
        [keys.members(change.chatId), keys.membersVersion(change.chatId)],
        randomUUID(),
        deps.ttlSeconds,
      ),
      deps.userChats.invalidate(change.userIds),
    ]);
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

    /**
     * Drops every cached member set and chat-id copy (after Redis was unreachable, changes may have
     * been missed: a stale copy would hand a user who left a chat its events while PostgreSQL is down).
     */
    async dropCaches(): Promise<void> {
      for await (const found of scanKeys(keyNodes(redis), keys.members('*'))) await unlinkKeys(redis, found);
      await deps.userChats.dropAll();
    },

    /**
     * Before a change is written to PostgreSQL: outdates fills already reading it. Best effort:
     * without Redis no fill can write either, and the call after the commit (or recovery's
     * dropCaches) covers what this one missed.
     */
    async changing(change: MembershipChange): Promise<void> {
      await invalidate(change).catch(() => undefined);
    },

    /** After a change in PostgreSQL: drop the caches (outdating fills in flight) and tell every api process. */
    async changed(change: MembershipChange): Promise<void> {
      await invalidate(change);
      const [v, seq] = await Promise.all([
        redis.incr(keys.membershipCounter(change.chatId)),
        change.change === 'added' ? redis.get(keys.seq(change.chatId)) : null,
      ]);
      // Of an addition, where an api holding none of the chat's members catches up from. No
      // counter: the chat has no log in Redis (no message yet, or its keys expired together), so
      // whatever its log holds when the api reads it came after this change.
      const announced: MembershipChange =
        change.change === 'added' ? { ...change, v, seq: seq === null ? 0 : Number(seq) } : { ...change, v };
      const json = JSON.stringify(announced);
      // On the chat's channel, in order with its messages (a message sent after this answer reaches
      // an added member and no removed one), and on the shared one for the api processes holding
      // none of its members, which are not subscribed to the chat's.
      await Promise.all([
        redis.spublish(keys.channels.chat(change.chatId), `${CHAT_PAYLOAD.membership} ${json}`),
        redis.publish(keys.channels.membership, json),
      ]);
    },
  };
}

export type MembershipService = ReturnType<typeof createMembershipService>;
