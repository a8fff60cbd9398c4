import type { Message } from '../domain/types.js';
import { pipelineBySlot, type RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { ChatAudience } from '../stores/chat-store.js';
import { notificationNeeded, type WebhookEvent } from './events.js';

export interface OfflineNotifierDeps {
  redis: RedisClient;
  keys: Pick<Keys, 'presence' | 'reads' | 'notifyGate'>;
  /** Titles and members of chats (ChatStore.audiences). */
  audiences: (chatIds: string[]) => Promise<Map<string, ChatAudience>>;
  debounceMs: number;
  previewChars: number;
}

interface Candidate {
  chatId: string;
  title: string | null;
  member: ChatAudience['members'][number];
  message: Message;
  sender: { id: string; username: string; displayName: string };
}

/**
 * Offline notifications (docs/protocol.md "Integrations"): for the messages of one persist batch,
 * the `notification.needed` events to send. For each chat and member, the newest message of the
 * batch someone else sent is a candidate; it becomes an event when the member has no open
 * connection anywhere (no `presence:{userId}`: presence-state.ts keeps it while any api process
 * holds a live socket of theirs), has not read it (their read position, Redis's or PostgreSQL's,
 * whichever is later, is below its seq), and no notification for them in that chat went out in the
 * last NOTIFY_DEBOUNCE_MS (SET NX PX on `chat:{chatId}:notify:{userId}`, in the chat's slot).
 * Four round trips per batch at most, whatever its size: one query, then three pipelines.
 */
export function createOfflineNotifier(deps: OfflineNotifierDeps) {
  const { redis, keys } = deps;

  return {
    async notificationsFor(messages: readonly Message[]): Promise<WebhookEvent[]> {
      if (messages.length === 0) return [];
      const byChat = new Map<string, Message[]>();
      for (const m of messages) {
        const list = byChat.get(m.chatId);
        if (list) list.push(m);
        else byChat.set(m.chatId, [m]);
      }
      const audiences = await deps.audiences([...byChat.keys()]);
      let candidates: Candidate[] = [];
      for (const [chatId, sent] of byChat) {
        const audience = audiences.get(chatId);
        if (!audience) continue;
        const newestFirst = [...sent].sort((a, b) => b.seq - a.seq);
        const names = new Map(audience.members.map((m) => [m.userId, m]));
        for (const member of audience.members) {
          const message = newestFirst.find((m) => m.senderId !== member.userId && m.deletedAt === null);
          if (!message || member.lastReadSeq >= message.seq) continue;
          const who = names.get(message.senderId);
          candidates.push({
            chatId,
            title: audience.title,
            member,
            message,
            sender: who
              ? { id: who.userId, username: who.username, displayName: who.displayName }
              : { id: message.senderId, username: message.senderId, displayName: message.senderId },
          });
        }
      }
      if (candidates.length === 0) return [];

      // Connected anywhere: presence:{userId} exists.
      const users = [...new Set(candidates.map((c) => c.member.userId))];
      const presence = await pipelineBySlot(
        redis,
        users,
        keys.presence,
        (p, userId) => (p.exists(keys.presence(userId)), 1),
      );
      const online = new Set(users.filter((_, i) => replyOf(presence[i]) === 1));
      candidates = candidates.filter((c) => !online.has(c.member.userId));
      if (candidates.length === 0) return [];

      // Read already (the live position is in Redis; PostgreSQL's is a batch behind).
      const readKey = (c: Candidate) => keys.reads(c.chatId);
      const reads = await pipelineBySlot(
        redis,
        candidates,
        readKey,
        (p, c) => (p.hget(readKey(c), c.member.userId), 1),
      );
      const unread = candidates.map((c, i) => {
        const live = Number(replyOf(reads[i]) ?? 0);
        return c.message.seq - Math.max(c.member.lastReadSeq, Number.isFinite(live) ? live : 0);
      });
      candidates = candidates.filter((_, i) => (unread[i] ?? 0) > 0);
      const counts = unread.filter((n) => n > 0);
      if (candidates.length === 0) return [];

      // At most one per user and chat per window: whoever sets the gate sends.
      const gateKey = (c: Candidate) => keys.notifyGate(c.chatId, c.member.userId);
      const gates = await pipelineBySlot(
        redis,
        candidates,
        gateKey,
        (p, c) => (p.set(gateKey(c), '1', 'PX', deps.debounceMs, 'NX'), 1),
      );
      const events: WebhookEvent[] = [];
      candidates.forEach((c, i) => {
        if (replyOf(gates[i]) !== 'OK') return;
        events.push(
          notificationNeeded({
            userId: c.member.userId,
            chatId: c.chatId,
            chatTitle: c.title,
            unreadCount: counts[i] ?? 0,
            seq: c.message.seq,
            messageId: c.message.id,
            sender: c.sender,
            preview: [...c.message.body].slice(0, deps.previewChars).join(''),
          }),
        );
      });
      return events;
    },
  };
}

export type OfflineNotifier = ReturnType<typeof createOfflineNotifier>;

/** The one reply of a pipelined command, throwing its error (the batch then fails and is redone). */
function replyOf(replies: readonly [Error | null, unknown][] | undefined): unknown {
  const [err, value] = replies?.[0] ?? [new Error('no pipeline reply'), null];
  if (err) throw err;
  return value;
}
