import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type QueueName, QUEUES } from './definitions.js';

/**
 * A producer-side Queue for every queue in QUEUES, on one shared connection (BullMQ reuses a
 * connection it is given for a Queue and does not close it). Bull Board and the queue-depth
 * metrics take this map, so a queue added to QUEUES shows up in both without more wiring.
 */
export function openQueues(connection: Redis, prefix: string): Record<QueueName, Queue> {
  const queues = {} as Record<QueueName, Queue>;
  for (const name of Object.values(QUEUES)) queues[name] = new Queue(name, { connection, prefix });
  return queues;
}

/** Closes every queue of the map (not the connection, which its creator ends). */
export async function closeQueues(queues: Record<QueueName, Queue>): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
