import type { JobSchedulerTemplateOptions, JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { Config } from '../config.js';
import { idSchema } from '../domain/schemas.js';

/**
 * The queues the api produces into and workers consume (shared by src/ and workers/).
 * Every Queue, Worker and Bull Board adapter uses config.QUEUE_PREFIX, hash-tagged for Cluster;
 * the sharded ones (SHARDED_QUEUES) one queue and prefix per shard (queueShards in shards.ts).
 */
export const QUEUES = {
  /**
   * Persist jobs (PersistJob): one per chat and batch, not per message. A chat's persist ticket
   * (src/message-log/persist-ticket.ts) makes sure that while its messages wait there is one on the way.
   */
  persist: 'persist',
  /** Periodic (a job scheduler): trims active lists, sets TTLs, re-enqueues lost persistence jobs. */
  archive: 'archive',
  /** Read positions and last-seen times for PostgreSQL, written in micro-batches (receipt-jobs.ts). */
  receipts: 'receipts',
  /** Periodic (a job scheduler): the presence sweep for users whose connections stopped heartbeating. */
  presence: 'presence',
  /** Periodic (a job scheduler): deletes expired sessions from PostgreSQL in batches. */
  sessionPurge: 'session-purge',
  /**
   * Webhook deliveries (WebhookJob, src/webhooks/endpoints.ts): one queue per receiver,
   * `webhooks-<endpoint id>`, one job per receiver per run of events (a persist batch's, at most
   * WEBHOOK_JOB_MAX_EVENTS); failed jobs stay as the dead-letter set, their undelivered events in their progress.
   */
  webhooks: 'webhooks',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * The queues split into PERSIST_SHARDS queues by chat (src/queues/shards.ts): their work grows
 * with messages. The periodic ones stay one queue each.
 */
export const SHARDED_QUEUES = [QUEUES.persist, QUEUES.receipts] as const;
export type ShardedQueueName = (typeof SHARDED_QUEUES)[number];
/** The queues opened once per webhook receiver (WEBHOOK_URLS), under names of their own. */
export type PerEndpointQueueName = typeof QUEUES.webhooks;
export type UnshardedQueueName = Exclude<QueueName, ShardedQueueName | PerEndpointQueueName>;

/**
 * A persist job: "write this chat's pending messages". The messages themselves stay in Redis
 * (the active list, and the chat's pending set of seqs PostgreSQL may lack) until PostgreSQL holds
 * them, so a job carries no message data, and a lost or repeated job costs nothing but a lookup.
 */
export interface PersistJob {
  chatId: string;
}

/** What the persist worker accepts (anything else fails its job at once, see job-data.ts). */
export const persistJobSchema: z.ZodType<PersistJob> = z.object({ chatId: idSchema });

/**
 * How a queue's failed jobs wait before their next attempt: base * 2^(n-1) ms, capped. Queues
 * whose jobs retry name the `capped-exponential` backoff type in their job options; their
 * worker computes it (backoffStrategy below).
 */
export interface RetryPace {
  baseMs: number;
  capMs: number;
}

/** The persist queue's pace: PERSIST_BACKOFF_MS doubling up to PERSIST_BACKOFF_CAP_MS. */
export function persistRetryPace(config: Pick<Config, 'PERSIST_BACKOFF_MS' | 'PERSIST_BACKOFF_CAP_MS'>): RetryPace {
  return { baseMs: config.PERSIST_BACKOFF_MS, capMs: config.PERSIST_BACKOFF_CAP_MS };
}

/**
 * The persist queue's job options. A job stands for a chat whose messages wait in Redis until
 * PostgreSQL holds them, so it retries with the capped backoff for PERSIST_ATTEMPTS attempts
 * (1000 with the 10 s cap: hours of a PostgreSQL outage) before it is given up on; while it
 * waits, its chat keeps its persist ticket and the messages stay pending.
 */
export function persistJobOptions(
  config: Pick<Config, 'PERSIST_ATTEMPTS' | 'PERSIST_BACKOFF_MS' | 'QUEUE_KEEP_COMPLETED' | 'QUEUE_KEEP_FAILED'>,
): JobsOptions {
  return {
    attempts: config.PERSIST_ATTEMPTS,
    backoff: { type: 'capped-exponential', delay: config.PERSIST_BACKOFF_MS },
    removeOnComplete: config.QUEUE_KEEP_COMPLETED > 0 ? { count: config.QUEUE_KEEP_COMPLETED } : true,
    removeOnFail: { count: config.QUEUE_KEEP_FAILED },
  };
}

/** A webhook queue's pace: WEBHOOK_BACKOFF_MS doubling up to WEBHOOK_BACKOFF_CAP_MS. */
export function webhookRetryPace(config: Pick<Config, 'WEBHOOK_BACKOFF_MS' | 'WEBHOOK_BACKOFF_CAP_MS'>): RetryPace {
  return { baseMs: config.WEBHOOK_BACKOFF_MS, capMs: config.WEBHOOK_BACKOFF_CAP_MS };
}

/**
 * A delivery job's options: WEBHOOK_ATTEMPTS attempts with the capped backoff (20 with 1 s doubling
 * to 1 h: about 9 hours of a receiver being away), then the failed set, which is the dead-letter
 * set (kept up to QUEUE_KEEP_FAILED per receiver, retried from Bull Board). The last thousand
 * completed jobs stay, so that an event produced again soon after (a persist batch redone) finds
 * its job id taken and is not delivered twice.
 */
export function webhookJobOptions(
  config: Pick<Config, 'WEBHOOK_ATTEMPTS' | 'WEBHOOK_BACKOFF_MS' | 'QUEUE_KEEP_FAILED'>,
): JobsOptions {
  return {
    attempts: config.WEBHOOK_ATTEMPTS,
    backoff: { type: 'capped-exponential', delay: config.WEBHOOK_BACKOFF_MS },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: config.QUEUE_KEEP_FAILED },
  };
}

const webhookEventSchema = z.object({
  id: z.string().min(1),
  type: z.enum(['message.created', 'message.updated', 'member.added', 'member.removed', 'notification.needed']),
  createdAt: z.string(),
  data: z.unknown(),
});

/**
 * What the webhook worker accepts: a run of events for one receiver (WebhookJob). A job of the
 * earlier shape, one `event`, is read as a run of one.
 */
export const webhookJobSchema = z
  .union([
    z.object({ endpointId: z.string().min(1), url: z.string().url(), events: z.array(webhookEventSchema).min(1) }),
    z.object({ endpointId: z.string().min(1), url: z.string().url(), event: webhookEventSchema }),
  ])
  .transform((j) => ('events' in j ? j : { endpointId: j.endpointId, url: j.url, events: [j.event] }));

/**
 * A delivery job's progress (Bull Board shows it): the ids of its events the receiver acknowledged
 * so far, recorded after an attempt that left some undelivered (and every second of a long one),
 * so that a retry sends only the others; `undelivered` is what the last attempt left.
 */
export const webhookProgressSchema = z.object({
  delivered: z.array(z.string()),
  undelivered: z.array(z.string()).optional(),
  lastError: z.string().optional(),
});
export type WebhookProgress = z.infer<typeof webhookProgressSchema>;

/** One periodic queue's job: its job scheduler's id, the name of the jobs it emits, their options. */
export interface ScheduledJob {
  schedulerId: string;
  name: string;
  options: JobSchedulerTemplateOptions;
}

/**
 * The periodic queues' jobs. Every worker upserts each schedule, and the scheduler id makes it
 * one however many workers run. A run is not retried (one attempt): the next run does its work.
 * The last hundred runs, done or failed, stay for Bull Board to show what each did; a presence
 * sweep, every few seconds and reporting only a count, keeps its failures alone.
 */
export const SCHEDULED_JOBS = {
  /** Trims active lists, sets TTLs, re-enqueues lost persistence jobs (workers/archive-worker.ts). */
  archive: {
    schedulerId: 'archive-every-interval',
    name: 'archive',
    options: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
  },
  /** Takes users whose connections stopped heartbeating offline (workers/presence-worker.ts). */
  presence: {
    schedulerId: 'presence-sweep',
    name: 'sweep',
    options: { removeOnComplete: true, removeOnFail: { count: 100 } },
  },
  /** Deletes expired sessions in batches (workers/session-purge.ts). */
  sessionPurge: {
    schedulerId: 'session-purge-every-interval',
    name: 'purge',
    options: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
  },
} as const satisfies Record<string, ScheduledJob>;

/** Delay before retry number `attemptsMade` (1-based): base * 2^(n-1), capped. */
export function cappedExponentialDelay(attemptsMade: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attemptsMade - 1, 30)));
}

/** A worker's `settings.backoffStrategy` for a queue's pace (BullMQ asks it for custom backoff types). */
export function backoffStrategy(pace: RetryPace): (attemptsMade: number) => number {
  return (attemptsMade) => cappedExponentialDelay(attemptsMade, pace.baseMs, pace.capMs);
}
