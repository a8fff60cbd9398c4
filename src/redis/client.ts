import { type ChainableCommander, Cluster, type Redis } from 'ioredis';
import { CLUSTER_SLOTS, clusterKeySlot } from '../infra/cluster-slot.js';

/**
 * A Redis command client: one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES). Every
 * key a command, script or transaction names is in one hash slot (docs/protocol.md "Redis names"),
 * so both run the same code; what differs is said here once: which nodes hold keys to SCAN, and
 * how commands on keys of many slots are pipelined.
 */
export type RedisClient = Redis | Cluster;

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** The nodes that hold keys: every master of a cluster (SCAN walks one node), else the client itself. */
export function keyNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * PING on every node that holds keys; on a cluster also every slot served. A slot whose master is
 * gone fails its chats' commands while the other masters answer, so the cluster counts as up
 * only when each master answers and a master says every slot is ok (CLUSTER INFO): ioredis drops
 * a dead master from its pool once a slot refresh no longer lists it, and the cluster marks its
 * slots failed a moment after its node timeout; one of the two sees it.
 */
export async function pingAll(client: RedisClient): Promise<void> {
  const nodes = keyNodes(client);
  const [first] = nodes;
  if (first === undefined) throw new Error('no Redis node known yet');
  await Promise.all(nodes.map((node) => node.ping()));
  if (!isCluster(client)) return;
  const served = Number(/cluster_slots_ok:(\d+)/.exec(String(await first.cluster('INFO')))?.[1] ?? 0);
  if (served < CLUSTER_SLOTS) throw new Error(`Redis Cluster: ${served} of ${CLUSTER_SLOTS} slots served`);
}

/** A MOVED or ASK reply: the slot is served elsewhere (after a failover or a resharding). */
export function isRedirection(err: unknown): boolean {
  return err instanceof Error && /^(MOVED|ASK) /.test(err.message);
}

/**
 * Makes a cluster client read the slot map again. ioredis does so by itself when a command is
 * redirected, but not when a pipeline's commands are redirected with different replies (one MOVED
 * per slot, or a MOVED next to another error): it then hands the errors back and keeps the stale
 * map, so every later pipeline on those slots would fail the same way.
 */
export async function refreshSlots(client: RedisClient): Promise<void> {
  if (!isCluster(client)) return;
  await new Promise<void>((resolve) => {
    client.refreshSlotsCache(() => resolve());
  });
}

/** A reply of a pipeline: [error, result]. */
export type PipelineReply = [Error | null, unknown];

/**
 * Runs commands for many items, each item's commands on keys of one hash slot (`keyOf(item)` is
 * one of them), in as few round trips as the topology allows: one pipeline on a single Redis; on
 * a cluster one pipeline per node group (ioredis sends a pipeline to one node, so commands of
 * slots held by different masters cannot share one), the groups in parallel. `queue` adds an
 * item's commands to the pipeline and returns how many it added. Resolves with each item's
 * replies, in the order of `items`; a pipeline that fails as a whole rejects.
 */
export async function pipelineBySlot<T>(
  client: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  queue: (pipeline: ChainableCommander, item: T) => number,
): Promise<PipelineReply[][]> {
  if (items.length === 0) return [];
  const groups = new Map<string, number[]>();
  if (isCluster(client)) {
    for (let i = 0; i < items.length; i++) {
      const slot = clusterKeySlot(keyOf(items[i] as T));
      // The masters (and replicas) serving the slot as ioredis last saw them; the slot itself
      // while the slot map is not known (the pipeline then waits for it like any command).
      const group = client.slots[slot]?.join(',') ?? `slot ${slot}`;
      let members = groups.get(group);
      if (!members) groups.set(group, (members = []));
      members.push(i);
    }
  } else {
    groups.set(
      '',
      items.map((_, i) => i),
    );
  }
  const replies: PipelineReply[][] = new Array<PipelineReply[]>(items.length);
  await Promise.all(
    [...groups.values()].map(async (members) => {
      const pipeline = client.pipeline();
      const counts = members.map((i) => queue(pipeline, items[i] as T));
      const results = ((await pipeline.exec()) ?? []) as PipelineReply[];
      // Redirected: the map is stale. The callers retry what failed; the next try finds the new master.
      if (results.some(([err]) => isRedirection(err))) await refreshSlots(client);
      let at = 0;
      members.forEach((item, j) => {
        const n = counts[j] ?? 0;
        replies[item] = results.slice(at, at + n);
        at += n;
      });
    }),
  );
  return replies;
}

/** A second connection with the options of `client` and its connection name suffixed (`-${suffix}`). */
export function duplicateClient(client: RedisClient, suffix: string): RedisClient {
  if (isCluster(client)) {
    const redisOptions = client.options.redisOptions ?? {};
    return client.duplicate(undefined, {
      redisOptions: { ...redisOptions, connectionName: `${redisOptions.connectionName ?? 'parley'}-${suffix}` },
    });
  }
  return client.duplicate({ connectionName: `${client.options.connectionName ?? 'parley'}-${suffix}` });
}

/** Unlinks keys of any slots (a SCAN's batch): one UNLINK on a single Redis, one per key pipelined by slot on a cluster. */
export async function unlinkKeys(client: RedisClient, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  if (!isCluster(client)) {
    await client.unlink(...keys);
    return;
  }
  const replies = await pipelineBySlot(
    client,
    keys,
    (key) => key,
    (pipeline, key) => (pipeline.unlink(key), 1),
  );
  const failed = replies.flat().find(([err]) => err)?.[0];
  if (failed) throw failed;
}
