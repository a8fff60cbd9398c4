import type { Message } from '../src/domain/types.js';
import type { ChatStore } from '../src/stores/chat-store.js';
import type { MessageStore } from '../src/stores/message-store.js';

/**
 * The newest message time and the highest seq of each chat in a batch (ISO-8601 UTC strings order
 * as times do).
 */
export function chatActivity(batch: Message[]): { chatId: string; at: string; seq: number }[] {
  const newest = new Map<string, { chatId: string; at: string; seq: number }>();
  for (const m of batch) {
    const seen = newest.get(m.chatId);
    if (!seen) newest.set(m.chatId, { chatId: m.chatId, at: m.createdAt, seq: m.seq });
    else {
      if (seen.at < m.createdAt) seen.at = m.createdAt;
      if (seen.seq < m.seq) seen.seq = m.seq;
    }
  }
  return [...newest.values()];
}

/**
 * The persist worker's message store, plus: once a batch is in PostgreSQL, each of its chats'
 * last activity (the chat list's order) moves up to its newest message in it, with one statement
 * per batch, and so does what PostgreSQL holds of it (`persisted_seq`). If that statement fails, the batch fails and is retried; the INSERT is idempotent and
 * activity only moves forward. Superseded messages were never acked and move nothing.
 */
export function withChatActivity(messages: MessageStore, chats: Pick<ChatStore, 'advanceActivity'>): MessageStore {
  return {
    ...messages,
    async insertBatch(batch: Message[]) {
      const result = await messages.insertBatch(batch);
      await chats.advanceActivity(chatActivity(batch.filter((m) => !result.superseded.includes(m))));
      return result;
    },
  };
}
