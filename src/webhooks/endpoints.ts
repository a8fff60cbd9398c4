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

/**
 * A delivery job: a run of events for one receiver (the URL is the job's own, so a reordered list
 * still delivers right). Each event is still POSTed as a request of its own; the job only groups
 * them so that a persist batch costs one job per receiver, not one per event.
 */
export interface WebhookJob {
  endpointId: string;
  url: string;
  events: WebhookEvent[];
}

/** At most this many events in one job by default (WEBHOOK_JOB_MAX_EVENTS). */
export const DEFAULT_JOB_MAX_EVENTS = 500;

/**
 * Splits events into runs of at most `max`, in order, each with its job id: `b-` and the first 24
 * hex digits of the SHA-256 of the run's event ids. The same run produced again (a persist batch
 * redone) has the same id and is added once while its first job is kept; a run that differs (a
 * redone batch that took more messages) is a new job, whose events the receivers deduplicate by
 * id. (BullMQ refuses `:` in job ids and integer-looking ones; neither can occur here.)
 */
export function eventRuns(
  events: readonly WebhookEvent[],
  max = DEFAULT_JOB_MAX_EVENTS,
): { jobId: string; events: WebhookEvent[] }[] {
  const size = Math.max(1, Math.floor(max));
  const runs: { jobId: string; events: WebhookEvent[] }[] = [];
  for (let i = 0; i < events.length; i += size) {
    const run = events.slice(i, i + size);
    const hash = createHash('sha256');
    for (const e of run) hash.update(e.id).update('\n');
    runs.push({ jobId: `b-${hash.digest('hex').slice(0, 24)}`, events: run });
  }
  return runs;
}

/** Adds events to every receiver's queue, one job per receiver per run of at most WEBHOOK_JOB_MAX_EVENTS events. */
export interface WebhookEmitter {
  /** True when there is a receiver at all (callers skip building events otherwise). */
  readonly enabled: boolean;
  emit(events: readonly WebhookEvent[]): Promise<void>;
}

/**
 * The producer side. A call (a persist batch's events, a membership change's) becomes runs of at
 * most `maxEvents` events (eventRuns), each one job per receiver, its id derived from its events'
 * ids: one addBulk per receiver per call (one round trip and one job per run however many events
 * it holds; with one receiver, one addBulk per persist batch).
 */
export function createWebhookEmitter(
  endpoints: readonly WebhookEndpoint[],
  queues: ReadonlyMap<string, Queue>,
  jobOptions: import('bullmq').JobsOptions,
  maxEvents = DEFAULT_JOB_MAX_EVENTS,
): WebhookEmitter {
  return {
    enabled: endpoints.length > 0,
    async emit(events) {
      if (events.length === 0 || endpoints.length === 0) return;
      const runs = eventRuns(events, maxEvents);
      await Promise.all(
        endpoints.map((endpoint) => {
          const queue = queues.get(endpoint.id);
          if (!queue) throw new Error(`no webhook queue for ${endpoint.id}`);
          return queue.addBulk(
            runs.map((run) => ({
              name: 'events',
              data: { endpointId: endpoint.id, url: endpoint.url, events: run.events } satisfies WebhookJob,
              opts: { ...jobOptions, jobId: run.jobId },
            })),
          );
        }),
      );
    },
  };
}
