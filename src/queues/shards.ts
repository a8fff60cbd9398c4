/**
 * Sharded queues (PERSIST_SHARDS): the persist and receipts queues are each split into N queues,
 * a chat's jobs always in the same one. BullMQ keeps every key of a queue in one Redis Cluster hash
 * slot (its scripts touch several keys at once), so one queue lives on one cluster shard, however
 * many workers consume it; N queues on N hash tags spread the queue work over the cluster.
 */

const encoder = new TextEncoder();

/**
 * The shard (0 .. shards-1) of a chat, or of any id: 32-bit FNV-1a of the id's UTF-8 bytes, mod
 * `shards`. Pure and stable across processes, versions and restarts (it must be: the api adds a
 * chat's job where every worker expects it).
 */
export function shardOf(id: string, shards: number): number {
  if (shards <= 1) return 0;
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(id)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/** Where one shard's queue lives: its BullMQ name and prefix. */
export interface QueueShard {
  name: string;
  prefix: string;
}

/**
 * The queues of a sharded queue `base`. BullMQ names a queue's keys `${prefix}:${name}:...`, and
 * on a cluster the FIRST `{...}` of a key decides its slot: with the default prefix `{parley}` every
 * queue is in the slot of `parley`, whatever its name. So each shard gets a prefix of its own,
 * hash-tagged with the shard: `{parley-persist-2}` for the queue `persist-2` (the braces of
 * QUEUE_PREFIX dropped inside the new tag). With one shard (the default) the queue keeps today's
 * name and prefix (`{parley}:persist:...`), so an existing deployment keeps its queue and jobs.
 * Every process must run with the same PERSIST_SHARDS: a job added to a shard no worker consumes
 * waits there.
 */
export function queueShards(base: string, queuePrefix: string, shards: number): QueueShard[] {
  if (shards <= 1) return [{ name: base, prefix: queuePrefix }];
  const tag = queuePrefix.replace(/[{}]/g, '');
  return Array.from({ length: shards }, (_, n) => {
    const name = `${base}-${n}`;
    return { name, prefix: `{${tag}-${name}}` };
  });
}

/** The member of `shards` (one per shard, in shard order) that holds `id`. */
export function shardFor<T>(shards: readonly T[], id: string): T {
  const shard = shards[shardOf(id, shards.length)];
  if (shard === undefined) throw new Error('no queue shards');
  return shard;
}
