import type { ChainableCommander } from 'ioredis';
import { clusterKeySlot } from './cluster-slot.js';

/** What a pipeline per slot needs of a client: ioredis's Redis and Cluster both have it. */
export interface Pipelining {
  pipeline(): ChainableCommander;
  /** True on a Redis Cluster client: only there do the items go as a pipeline per slot. */
  readonly isCluster: boolean;
}

/** One command's outcome, as ioredis's `exec` reports it. */
export type PipelineResult = [error: Error | null, result: unknown];

/**
 * Runs one command per item, pipelined. On Redis Cluster a pipeline must stay on one node (ioredis
 * refuses one whose keys live on two), and a hash slot is always on one node, whatever the slot
 * map says at the moment: there the items are grouped by the slot of their key (`keyOf`), one
 * pipeline per group, all groups at once. On a single Redis every slot is on the one server, so
 * they all go as one pipeline (10,000 one-command pipelines cost about four times the CPU of one
 * of 10,000 commands). `add` puts the item's command on the pipeline (its key must be
 * `keyOf(item)`, or one in the same slot).
 *
 * Resolves with each item's outcome, in the items' order (a failed command fails only its item);
 * rejects when a pipeline could not be run at all (the connection, or a cluster without the slot).
 */
export async function pipelinePerSlot<T>(
  client: Pipelining,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipeline: ChainableCommander, item: T) => void,
): Promise<PipelineResult[]> {
  const groups = new Map<number, number[]>();
  for (const [i, item] of items.entries()) {
    const slot = client.isCluster ? clusterKeySlot(keyOf(item)) : 0;
    let group = groups.get(slot);
    if (!group) groups.set(slot, (group = []));
    group.push(i);
  }
  const results = new Array<PipelineResult>(items.length);
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const pipeline = client.pipeline();
      for (const i of group) add(pipeline, items[i] as T);
      const replies = (await pipeline.exec()) ?? [];
      for (const [k, i] of group.entries()) {
        results[i] = replies[k] ?? [new Error('no reply from the pipeline'), null];
      }
    }),
  );
  return results;
}
