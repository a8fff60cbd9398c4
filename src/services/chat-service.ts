import { randomUUID } from 'node:crypto';
import { type ChatCursor, encodeChatCursor } from '../domain/chat-cursor.js';
import { AppError } from '../domain/errors.js';
import type { MembershipChange } from '../domain/events.js';
import type { Chat, ChatMember, Message } from '../domain/types.js';
import type { Logger } from '../logger.js';
import { decodeMessage, type MessageLog } from '../message-log/message-log.js';
import type { AddMemberResult, ChatRecord, ChatStore } from '../stores/chat-store.js';
import type { MessageStore } from '../stores/message-store.js';
import type { UserStore } from '../stores/user-store.js';
import type { MembershipService } from './membership-service.js';
import type { AbuseRules, WindowLimiter } from './window-limiter.js';

export interface ChatServiceDeps {
  /** The newest seq and message of a chat, while Redis has them. */
  log: Pick<MessageLog, 'latest'>;
  chats: ChatStore;
  users: UserStore;
  messages: MessageStore;
  membership: MembershipService;
  maxMembers: number;
  /** Most chats one user may be a member of (CHATS_PER_USER_MAX); joining one more is `conflict`. */
  maxChatsPerUser: number;
  /** The per-user limits on chats created and members added (shared across processes). */
  limiter: Pick<WindowLimiter, 'take'>;
  rules: Pick<AbuseRules, 'chatsCreated' | 'memberAdds'>;
  logger: Logger;
  /**
   * Told of every committed membership change (the member.added / member.removed webhooks). Its
   * failure is logged: the change stands.
   */
  onMembershipChanged?: (change: MembershipChange) => Promise<void>;
  /** The member's live read positions by chat (receipt service); chats left out use PostgreSQL's. */
  readPositions?: (userId: string, chatIds: string[]) => Promise<Map<string, number>>;
}

export interface ChatSummary extends Chat {
  lastMessage: Message | null;
  unreadCount: number;
}

/** A page of the chat list; `nextCursor` (opaque) is null on the last page. */
export interface ChatListPage {
  chats: ChatSummary[];
  nextCursor: string | null;
}

/** Why an add changed nothing, as the client sees it. */
const ADD_REFUSED: Record<
  Exclude<AddMemberResult, 'added'>,
  (limits: { members: number; chats: number }) => AppError
> = {
  'already-member': () => new AppError('conflict', 'already a member'),
  'chat-full': (l) => new AppError('conflict', `the chat has its ${l.members} members already`),
  'user-full': (l) => new AppError('conflict', `the user is in the most chats allowed (${l.chats}) already`),
  'no-chat': () => new AppError('not_found', 'no such chat'),
  'no-user': () => new AppError('not_found', 'no such user'),
};

export function createChatService(deps: ChatServiceDeps) {
  /** The newest seq and message: Redis's counter and list when it has them, else PostgreSQL. */
  async function latest(chatId: string): Promise<{ lastSeq: number; lastMessage: Message | null }> {
    try {
      const { counter, last } = await deps.log.latest(chatId);
      if (counter !== null && last !== null) return { lastSeq: counter, lastMessage: decodeMessage(last) };
      if (counter === 0) return { lastSeq: 0, lastMessage: null };
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
    try {
      await deps.onMembershipChanged?.(change);
    } catch (err) {
      deps.logger.warn({ err, chatId: change.chatId }, 'membership webhook events not queued');
    }
  }

  async function withLastSeq(chat: ChatRecord): Promise<Chat> {
    return { ...chat, lastSeq: (await latest(chat.id)).lastSeq };
  }

  return {
    async create(creatorId: string, input: { title?: string | null | undefined; memberIds: string[] }): Promise<Chat> {
      const memberIds = [...new Set([creatorId, ...input.memberIds])];
      if (memberIds.length > deps.maxMembers)
        throw new AppError('validation_failed', `at most ${deps.maxMembers} members`);
      await deps.limiter.take(deps.rules.chatsCreated, creatorId);
      if (memberIds.length > 1) await deps.limiter.take(deps.rules.memberAdds, creatorId, memberIds.length - 1);
      const known = await deps.users.existing(memberIds);
      const unknown = memberIds.find((id) => !known.has(id));
      if (unknown) throw new AppError('not_found', `no such user: ${unknown}`);
      const change: MembershipChange = { chatId: randomUUID(), userIds: memberIds, change: 'added' };
      await deps.membership.changing(change);
      const created = await deps.chats.create(
        { id: change.chatId, title: input.title?.trim() || null, createdBy: creatorId, memberIds },
        { maxChatsPerUser: deps.maxChatsPerUser },
      );
      if ('userAtCap' in created) {
        const who = created.userAtCap === creatorId ? 'you are' : `user ${created.userAtCap} is`;
        throw new AppError('conflict', `${who} in the most chats allowed (${deps.maxChatsPerUser}) already`);
      }
      await announce(change);
      return { ...created.chat, lastSeq: 0 };
    },

    /** A page of the user's chats, most recent activity first (see ChatStore.listFor). */
    async list(userId: string, page: { limit: number; cursor?: ChatCursor | undefined }): Promise<ChatListPage> {
      const { chats, next } = await deps.chats.listFor(userId, { limit: page.limit, after: page.cursor });
      // Read positions only move forward, so the live one (Redis) and the stored one
      // (PostgreSQL, a batch behind) combine by max; without Redis the stored one answers.
      const live =
        (await deps
          .readPositions?.(
            userId,
            chats.map((c) => c.id),
          )
          .catch(() => undefined)) ?? new Map<string, number>();
      const summaries = await Promise.all(
        chats.map(async ({ lastReadSeq, ...chat }) => {
          const { lastSeq, lastMessage } = await latest(chat.id);
          const read = Math.max(lastReadSeq, live.get(chat.id) ?? 0);
          return { ...chat, lastSeq, lastMessage, unreadCount: Math.max(0, lastSeq - read) };
        }),
      );
      return { chats: summaries, nextCursor: next ? encodeChatCursor(next) : null };
    },

    async get(userId: string, chatId: string): Promise<Chat & { members: ChatMember[] }> {
      await deps.membership.requireMember(chatId, userId);
      const chat = await deps.chats.find(chatId);
      if (!chat) throw new AppError('not_found', 'no such chat');
      const [withSeq, members] = await Promise.all([withLastSeq(chat), deps.chats.members(chatId)]);
      return { ...withSeq, members };
    },

    /** Counts against the actor's member adds; the user must have room for one more chat. */
    async addMember(actorId: string, chatId: string, userId: string): Promise<void> {
      await deps.membership.requireMember(chatId, actorId);
      await deps.limiter.take(deps.rules.memberAdds, actorId);
      const change: MembershipChange = { chatId, userIds: [userId], change: 'added' };
      await deps.membership.changing(change);
      const result = await deps.chats.addMember(chatId, userId, {
        maxMembers: deps.maxMembers,
        maxChatsPerUser: deps.maxChatsPerUser,
      });
      if (result !== 'added') throw ADD_REFUSED[result]({ members: deps.maxMembers, chats: deps.maxChatsPerUser });
      await announce(change);
    },

    /** A member may leave (whatever the limits: leaving counts against none); the chat's creator may remove anyone. */
    async removeMember(actorId: string, chatId: string, userId: string): Promise<void> {
      await deps.membership.requireMember(chatId, actorId);
      if (actorId !== userId) {
        const chat = await deps.chats.find(chatId);
        if (chat?.createdBy !== actorId) throw new AppError('forbidden', 'only the chat creator may remove others');
      }
      const change: MembershipChange = { chatId, userIds: [userId], change: 'removed' };
      await deps.membership.changing(change);
      if (!(await deps.chats.removeMember(chatId, userId))) throw new AppError('not_found', 'not a member');
      await announce(change);
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
