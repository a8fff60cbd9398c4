import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { redactedUrl, type WebhookEndpoint } from './endpoints.js';

/** What GET /admin/webhooks shows of one receiver. */
export interface EndpointStatus {
  id: string;
  /** Without user info, query or fragment. */
  url: string;
  queue: string;
  /** Events it acknowledged (a 2xx). */
  delivered: number;
  /** Events given up on after every attempt: in the dead-letter (failed) set of its queue. */
  failed: number;
  /** Attempts that failed (each retried unless it was the last). */
  failedAttempts: number;
  /** Events waiting for their first attempt or their next (waiting, delayed, active). */
  pending: number;
  lastError: string | null;
  lastErrorAt: string | null;
}

/**
 * Delivery counts kept in Redis (`webhooks:{endpointId}:stats`), so that every worker counts into
 * the same numbers and every api process shows them.
 */
export function createWebhookStats(redis: RedisClient, keys: Pick<Keys, 'webhookStats'>) {
  return {
    async delivered(endpointId: string): Promise<void> {
      await redis.hincrby(keys.webhookStats(endpointId), 'delivered', 1);
    },
    /** A failed attempt; `dead` when it was the last one. The error text must hold no secret. */
    async failed(endpointId: string, error: string, dead: boolean): Promise<void> {
      const key = keys.webhookStats(endpointId);
      const multi = redis
        .multi()
        .hincrby(key, 'failedAttempts', 1)
        .hset(key, 'lastError', error.slice(0, 500), 'lastErrorAt', new Date().toISOString());
      if (dead) multi.hincrby(key, 'dead', 1);
      await multi.exec();
    },
    /** Every receiver's status: counts from Redis, pending from its queue. */
    async status(endpoints: readonly WebhookEndpoint[], queues: ReadonlyMap<string, Queue>): Promise<EndpointStatus[]> {
      return Promise.all(
        endpoints.map(async (e) => {
          const [h, counts] = await Promise.all([
            redis.hgetall(keys.webhookStats(e.id)),
            queues.get(e.id)?.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'waiting-children') ??
              ({} as Record<string, number>),
          ]);
          return {
            id: e.id,
            url: redactedUrl(e.url),
            queue: e.queue.name,
            delivered: Number(h.delivered ?? 0),
            failed: Number(h.dead ?? 0),
            failedAttempts: Number(h.failedAttempts ?? 0),
            pending: Object.values(counts).reduce((a: number, b: number) => a + b, 0),
            lastError: h.lastError ?? null,
            lastErrorAt: h.lastErrorAt ?? null,
          };
        }),
      );
    },
  };
}

export type WebhookStats = ReturnType<typeof createWebhookStats>;
