import type { Message } from '../src/domain/types.js';
import type { MessageStore } from '../src/stores/message-store.js';
import type { ReadPosition, ReadStore } from '../src/stores/read-store.js';

/** The newest own message of each (chat, sender) in a batch. */
export function ownReadPositions(batch: Message[]): ReadPosition[] {
  const newest = new Map<string, ReadPosition>();
  for (const m of batch) {
    const key = `${m.chatId} ${m.senderId}`;
    const seen = newest.get(key);
    if (!seen || seen.seq < m.seq) newest.set(key, { chatId: m.chatId, userId: m.senderId, seq: m.seq });
  }
  return [...newest.values()];
}

/**
 * The persist worker's message store, plus: once a batch is in PostgreSQL, each sender's read
 * position moves to their newest message in it (one statement per batch), so that unreadCount
 * never counts a member's own messages, durably, without a job or a round trip per send.
 * (The api moves the same position in Redis right after the ack.) If that statement fails, the
 * batch fails and is retried; the INSERT is idempotent and positions only move forward.
 */
export function withOwnReadPositions(messages: MessageStore, reads: Pick<ReadStore, 'advanceBatch'>): MessageStore {
  return {
    ...messages,
    async insertBatch(batch: Message[]) {
      const result = await messages.insertBatch(batch);
      await reads.advanceBatch(ownReadPositions(batch.filter((m) => !result.superseded.includes(m))));
      return result;
    },
  };
}
