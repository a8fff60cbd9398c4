import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Config } from '../config.js';
import { QUEUES } from '../queues/definitions.js';
import type { QueueShard } from '../queues/shards.js';
import type { WebhookEvent } from './events.js';

/**
 * A webhook receiver (WEBHOOK_URLS) and its own queue. Each receiver has a queue of its own, so
 * that one that is slow or dead only ever holds up its own deliveries: its retries wait in its
 * queue's delayed set, its timeouts occupy its own workers' slots, and the other receivers'
 * queues are worked by other slots.
 */
export interface WebhookEndpoint {
  /** The first 16 hex digits of the URL's SHA-256: names its queue and its stats, stable across restarts and reorders. */
  id: string;
  url: string;
  queue: QueueShard;
}

export function endpointId(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/**
 * The receivers of WEBHOOK_URLS, each with its queue `webhooks-<id>` and a prefix hash-tagged
 * with it (so that on a cluster each receiver's queue may sit on its own node, as the persist
 * shards do, see src/queues/shards.ts).
 */
export function webhookEndpoints(config: Pick<Config, 'WEBHOOK_URLS' | 'QUEUE_PREFIX'>): WebhookEndpoint[] {
  const tag = config.QUEUE_PREFIX.replace(/[{}]/g, '');
  return [...new Set(config.WEBHOOK_URLS)].map((url) => {
    const id = endpointId(url);
    const name = `${QUEUES.webhooks}-${id}`;
    return { id, url, queue: { name, prefix: `{${tag}-${name}}` } };
  });
}

/** A URL as it may be shown (admin route, logs): without user info, query or fragment, which may hold credentials. */
export function redactedUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** A delivery job: one event for one receiver (the URL is the job's own, so a reordered list still delivers right). */
export interface WebhookJob {
  endpointId: string;
  url: string;
  event: WebhookEvent;
}

/** Adds events to every receiver's queue, one job per (receiver, event), the event's id as job id. */
export interface WebhookEmitter {
  /** True when there is a receiver at all (callers skip building events otherwise). */
  readonly enabled: boolean;
  emit(events: readonly WebhookEvent[]): Promise<void>;
}

/**
 * The producer side. The job id is the event id, so an event produced twice while its first job
 * is still in its queue (waiting, delayed, active, or among the completed ones kept) is added once.
 * One addBulk per receiver per call: a persist batch's events cost one round trip per receiver.
 */
export function createWebhookEmitter(
  endpoints: readonly WebhookEndpoint[],
  queues: ReadonlyMap<string, Queue>,
  jobOptions: import('bullmq').JobsOptions,
): WebhookEmitter {
  return {
    enabled: endpoints.length > 0,
    async emit(events) {
      if (events.length === 0 || endpoints.length === 0) return;
      await Promise.all(
        endpoints.map((endpoint) => {
          const queue = queues.get(endpoint.id);
          if (!queue) throw new Error(`no webhook queue for ${endpoint.id}`);
          return queue.addBulk(
            events.map((event) => ({
              name: event.type,
              data: { endpointId: endpoint.id, url: endpoint.url, event } satisfies WebhookJob,
              opts: { ...jobOptions, jobId: event.id },
            })),
          );
        }),
      );
    },
  };
}
