import type { Queue } from 'bullmq';
import { webhookJobSchema, webhookProgressSchema } from '../queues/definitions.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { redactedUrl, type WebhookEndpoint } from './endpoints.js';

/** What GET /admin/webhooks shows of one receiver. Every count but `pendingJobs` counts events. */
export interface EndpointStatus {
  id: string;
  /** Without user info, query or fragment. */
  url: string;
  queue: string;
  /** Events it acknowledged (a 2xx). */
  delivered: number;
  /** Events given up on after every attempt: undelivered events of jobs in its queue's dead-letter (failed) set. */
  failed: number;
  /** Failed deliveries of an event (each retried unless it was the job's last attempt). */
  failedAttempts: number;
  /**
   * Events waiting for their first delivery or their next (in waiting, delayed and active jobs, less
   * those a job's progress has as delivered). Counted from the first PENDING_SCAN_JOBS such jobs;
   * `pendingExact` is false when there were more (then `pending` is a lower bound).
   */
  pending: number;
  pendingExact: boolean;
  /** Delivery jobs waiting, delayed or active (a job holds a run of up to WEBHOOK_JOB_MAX_EVENTS events). */
  pendingJobs: number;
  lastError: string | null;
  lastErrorAt: string | null;
}

/** At most this many pending jobs are read to count their events for GET /admin/webhooks. */
export const PENDING_SCAN_JOBS = 1000;

/** What one delivery attempt of a job did, in events. */
export interface AttemptOutcome {
  delivered: number;
  failed: number;
  /** The attempt's error, when some event failed (must hold no secret). */
  error?: string;
  /** True when it was the job's last attempt: its `failed` events are given up on. */
  dead?: boolean;
}

const PENDING_STATES = ['waiting', 'delayed', 'active', 'prioritized', 'waiting-children'] as const;

/**
 * Delivery counts kept in Redis (`webhooks:{endpointId}:stats`), so that every worker counts into
 * the same numbers and every api process shows them: one MULTI per delivery attempt of a job.
 */
export function createWebhookStats(redis: RedisClient, keys: Pick<Keys, 'webhookStats'>) {
  return {
    async attempt(endpointId: string, outcome: AttemptOutcome): Promise<void> {
      const key = keys.webhookStats(endpointId);
      const multi = redis.multi();
      if (outcome.delivered > 0) multi.hincrby(key, 'delivered', outcome.delivered);
      if (outcome.failed > 0) {
        multi.hincrby(key, 'failedAttempts', outcome.failed);
        if (outcome.dead) multi.hincrby(key, 'dead', outcome.failed);
      }
      if (outcome.error !== undefined)
        multi.hset(key, 'lastError', outcome.error.slice(0, 500), 'lastErrorAt', new Date().toISOString());
      if (multi.length === 0) return;
      await multi.exec();
    },
    /** Every receiver's status: counts from Redis, pending from its queue. */
    async status(endpoints: readonly WebhookEndpoint[], queues: ReadonlyMap<string, Queue>): Promise<EndpointStatus[]> {
      return Promise.all(
        endpoints.map(async (e) => {
          const queue = queues.get(e.id);
          const [h, counts, jobs] = await Promise.all([
            redis.hgetall(keys.webhookStats(e.id)),
            queue?.getJobCounts(...PENDING_STATES) ?? ({} as Record<string, number>),
            queue?.getJobs([...PENDING_STATES], 0, PENDING_SCAN_JOBS - 1) ?? [],
          ]);
          const pendingJobs = Object.values(counts).reduce((a: number, b: number) => a + b, 0);
          let pending = 0;
          for (const job of jobs) {
            if (!job) continue;
            const data = webhookJobSchema.safeParse(job.data);
            if (!data.success) continue;
            const progress = webhookProgressSchema.safeParse(job.progress);
            const done = new Set(progress.success ? progress.data.delivered : []);
            pending += data.data.events.filter((ev) => !done.has(ev.id)).length;
          }
          return {
            id: e.id,
            url: redactedUrl(e.url),
            queue: e.queue.name,
            delivered: Number(h.delivered ?? 0),
            failed: Number(h.dead ?? 0),
            failedAttempts: Number(h.failedAttempts ?? 0),
            pending,
            pendingExact: jobs.length >= pendingJobs,
            pendingJobs,
            lastError: h.lastError ?? null,
            lastErrorAt: h.lastErrorAt ?? null,
          };
        }),
      );
    },
  };
}

export type WebhookStats = ReturnType<typeof createWebhookStats>;
