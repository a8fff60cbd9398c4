import type { JobsOptions, Queue } from 'bullmq';
import type { PersistQueue } from '../message-log/message-log.js';
import type { PersistJob } from './definitions.js';

/** The message log's persist queue over BullMQ: one `persist` job per chat, with the persist job options. */
export function bullPersistQueue(queue: Queue<PersistJob>, options: JobsOptions): PersistQueue {
  return {
    async add(chatIds) {
      const [only, ...more] = chatIds;
      if (only !== undefined && more.length === 0) await queue.add('persist', { chatId: only }, options);
      else await queue.addBulk(chatIds.map((chatId) => ({ name: 'persist', data: { chatId }, opts: options })));
    },
  };
}
