import type { JobsOptions, Queue } from 'bullmq';
import type { PersistQueue } from '../message-log/message-log.js';
import type { PersistJob } from './definitions.js';
import { shardOf } from './shards.js';

/**
 * The message log's persist queue over BullMQ: one `persist` job per chat, with the persist job
 * options, in the chat's shard of `queues` (one per shard, in shard order: OpenQueues.sharded.persist).
 * Every job of a chat goes there: first jobs, hand-ons (requeue) and repairs all come through here.
 * Chats of several shards are added shard by shard: when one shard's add fails the call rejects
 * though other shards may have their jobs, which costs a repeated job at most (the caller adds
 * again, and a second job of a chat finds its messages written).
 */
export function bullPersistQueue(queues: readonly Queue<PersistJob>[], options: JobsOptions): PersistQueue {
  return {
    async add(chatIds) {
      const byShard = new Map<Queue<PersistJob>, string[]>();
      for (const chatId of chatIds) {
        const queue = queues[shardOf(chatId, queues.length)];
        if (!queue) throw new Error('no persist queue');
        const ids = byShard.get(queue);
        if (ids) ids.push(chatId);
        else byShard.set(queue, [chatId]);
      }
      await Promise.all(
        [...byShard].map(([queue, ids]) => {
          const [only, ...more] = ids;
          if (only !== undefined && more.length === 0) return queue.add('persist', { chatId: only }, options);
          return queue.addBulk(ids.map((chatId) => ({ name: 'persist', data: { chatId }, opts: options })));
        }),
      );
    },
  };
}
