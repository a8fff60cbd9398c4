import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../domain/errors.js';
import type { Chat, ChatMember, Message } from '../domain/types.js';
import type { Logger } from '../logger.js';
import type { Keys } from '../redis/keys.js';
import type { ChatRecord, ChatStore } from '../stores/chat-store.js';
import type { MessageStore } from '../stores/message-store.js';
import type { UserStore } from '../stores/user-store.js';
import type { MembershipChange, MembershipService } from './membership-service.js';

export interface ChatServiceDeps {
  redis: Redis;
  keys: Keys;
  chats: ChatStore;
  users: UserStore;
  messages: MessageStore;
  membership: MembershipService;
  maxMembers: number;
  logger: Logger;
  /** The member's live read positions by chat (receipt service); chats left out use PostgreSQL's. */
  readPositions?: (userId: string, chatIds: string[]) => Promise<Map<string, number>>;
}

export interface ChatSummary extends Chat {
  lastMessage: Message | null;
  unreadCount: number;
}

export function createChatService(deps: ChatServiceDeps) {
  const { redis, keys } = deps;

  /** The newest seq and message: Redis's counter and list when it has them, else PostgreSQL. */
  async function latest(chatId: string): Promise<{ lastSeq: number; lastMessage: Message | null }> {
    try {
      const [seq, last] = await Promise.all([redis.get(keys.seq(chatId)), redis.lindex(keys.active(chatId), -1)]);
      if (seq !== null && last !== null) return { lastSeq: Number(seq), lastMessage: JSON.parse(last) as Message };
      if (seq === '0') return { lastSeq: 0, lastMessage: null };
    } catch {
      // Redis unavailable: PostgreSQL answers below.
    }
    const [lastMessage] = await deps.messages.page(chatId, 'before', Number.MAX_SAFE_INTEGER, 1);
    return { lastSeq: lastMessage?.seq ?? 0, lastMessage: lastMessage ?? null };
  }

  /** Membership changes are committed in PostgreSQL; failing to tell Redis must not undo them. */
  async function announce(change: MembershipChange): Promise<void> {
    try {
      await deps.membership.changed(change);
    } catch (err) {
      deps.logger.warn({ err, chatId: change.chatId }, 'membership change not announced (Redis unavailable)');
    }
  }

  async function withLastSeq(chat: ChatRecord): Promise<Chat> {
    return { ...chat, lastSeq: (await latest(chat.id)).lastSeq };
  }

  return {
    async create(creatorId: string, input: { title?: string | null | undefined; memberIds: string[] }): Promise<Chat> {
      const memberIds = [...new Set([creatorId, ...input.memberIds])];
      if (memberIds.length > deps.maxMembers) throw new AppError('validation_failed', `at most ${deps.maxMembers} members`);
      const known = await deps.users.existing(memberIds);
      const unknown = memberIds.find((id) => !known.has(id));
      if (unknown) throw new AppError('not_found', `no such user: ${unknown}`);
      const chat = await deps.chats.create({
        id: randomUUID(),
        title: input.title?.trim() || null,
        createdBy: creatorId,
        memberIds,
      });
      await announce({ chatId: chat.id, userIds: memberIds, change: 'added' });
      return { ...chat, lastSeq: 0 };
    },

    async list(userId: string): Promise<ChatSummary[]> {
      const chats = await deps.chats.listFor(userId);
      // Read positions only move forward, so the live one (Redis) and the stored one
      // (PostgreSQL, a batch behind) combine by max; without Redis the stored one answers.
      const live = (await deps.readPositions?.(userId, chats.map((c) => c.id)).catch(() => undefined)) ?? new Map<string, number>();
      return Promise.all(
        chats.map(async ({ lastReadSeq, ...chat }) => {
          const { lastSeq, lastMessage } = await latest(chat.id);
          const read = Math.max(lastReadSeq, live.get(chat.id) ?? 0);
          return { ...chat, lastSeq, lastMessage, unreadCount: Math.max(0, lastSeq - read) };
        }),
      );
    },

    async get(userId: string, chatId: string): Promise<Chat & { members: ChatMember[] }> {
      await deps.membership.requireMember(chatId, userId);
      const chat = await deps.chats.find(chatId);
      if (!chat) throw new AppError('not_found', 'no such chat');
      const [withSeq, members] = await Promise.all([withLastSeq(chat), deps.chats.members(chatId)]);
      return { ...withSeq, members };
    },

    async addMember(actorId: string, chatId: string, userId: string): Promise<void> {
      await deps.membership.requireMember(chatId, actorId);
      if (!(await deps.users.findById(userId))) throw new AppError('not_found', 'no such user');
      if ((await deps.chats.countMembers(chatId)) >= deps.maxMembers) {
        throw new AppError('conflict', `the chat has its ${deps.maxMembers} members already`);
      }
      if (!(await deps.chats.addMember(chatId, userId))) throw new AppError('conflict', 'already a member');
      await announce({ chatId, userIds: [userId], change: 'added' });
    },

    /** A member may leave; the chat's creator may remove anyone. */
    async removeMember(actorId: string, chatId: string, userId: string): Promise<void> {
      await deps.membership.requireMember(chatId, actorId);
      if (actorId !== userId) {
        const chat = await deps.chats.find(chatId);
        if (chat?.createdBy !== actorId) throw new AppError('forbidden', 'only the chat creator may remove others');
      }
      if (!(await deps.chats.removeMember(chatId, userId))) throw new AppError('not_found', 'not a member');
      await announce({ chatId, userIds: [userId], change: 'removed' });
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
