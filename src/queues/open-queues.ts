import { Queue } from 'bullmq';
import type { Config } from '../config.js';
import type { RedisClient } from '../redis/client.js';
import { webhookEndpoints } from '../webhooks/endpoints.js';
import { QUEUES, SHARDED_QUEUES, type ShardedQueueName, type UnshardedQueueName } from './definitions.js';
import { queueShards } from './shards.js';

/**
 * Every queue of QUEUES, producer side: the unsharded ones by name, the sharded ones (persist,
 * receipts) as one Queue per shard in shard order (src/queues/shards.ts), and `all` of them for
 * Bull Board and the queue-depth metrics, so that a queue or shard added shows up in both without
 * more wiring.
 */
export interface OpenQueues {
  single: Record<UnshardedQueueName, Queue>;
  sharded: Record<ShardedQueueName, Queue[]>;
  /** One per webhook receiver (WEBHOOK_URLS), by endpoint id (src/webhooks/endpoints.ts). */
  webhooks: Map<string, Queue>;
  all: Queue[];
}

/** Opens every queue on one shared connection (BullMQ reuses a connection it is given and does not close it). */
export function openQueues(
  connection: RedisClient,
  config: Pick<Config, 'QUEUE_PREFIX' | 'PERSIST_SHARDS' | 'WEBHOOK_URLS'>,
): OpenQueues {
  const single = {} as Record<UnshardedQueueName, Queue>;
  const sharded = {} as Record<ShardedQueueName, Queue[]>;
  for (const name of Object.values(QUEUES)) {
    if (name === QUEUES.webhooks) continue;
    if (isSharded(name))
      sharded[name] = queueShards(name, config.QUEUE_PREFIX, config.PERSIST_SHARDS).map(
        (shard) => new Queue(shard.name, { connection, prefix: shard.prefix }),
      );
    else single[name] = new Queue(name, { connection, prefix: config.QUEUE_PREFIX });
  }
  const webhooks = new Map(
    webhookEndpoints(config).map((e) => [e.id, new Queue(e.queue.name, { connection, prefix: e.queue.prefix })]),
  );
  return {
    single,
    sharded,
    webhooks,
    all: [...Object.values(single), ...Object.values(sharded).flat(), ...webhooks.values()],
  };
}

function isSharded(name: string): name is ShardedQueueName {
  return (SHARDED_QUEUES as readonly string[]).includes(name);
}

/** Closes every queue (not the connection, which its creator ends). */
export async function closeQueues(queues: OpenQueues): Promise<void> {
  await Promise.all(queues.all.map((q) => q.close()));
}
