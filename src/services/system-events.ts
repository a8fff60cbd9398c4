import { AppError } from '../domain/errors.js';
import { isCluster, type RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';

/** System-wide notices: published once, written by every api process to every client it holds. */
export function createSystemEvents(deps: { redis: RedisClient; keys: Keys }) {
  return {
    /**
     * Returns how many api processes received it: PUBLISH's count on one Redis; on a cluster, where
     * PUBLISH counts only the subscribers of the node it ran on (the cluster bus carries the
     * message to the others), the channel's subscribers summed over every node.
     */
    async broadcast(event: string, data: unknown): Promise<number> {
      const channel = deps.keys.channels.systemEvents;
      try {
        const received = await deps.redis.publish(channel, JSON.stringify({ event, data: data ?? null }));
        if (!isCluster(deps.redis)) return received;
        const counts = await Promise.all(
          deps.redis.nodes('all').map(async (node) => {
            const [, n] = (await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
            return Number(n);
          }),
        );
        return counts.reduce((sum, n) => sum + n, 0);
      } catch {
        throw new AppError('unavailable', 'system events are unavailable, try again');
      }
    },
  };
}

export type SystemEvents = ReturnType<typeof createSystemEvents>;
