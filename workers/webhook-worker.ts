import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import { errorText } from '../src/domain/errors.js';
import type { Logger } from '../src/logger.js';
import {
  backoffStrategy,
  webhookJobSchema,
  webhookProgressSchema,
  type WebhookProgress,
  webhookRetryPace,
} from '../src/queues/definitions.js';
import { parseJobData } from '../src/queues/job-data.js';
import type { RedisClient } from '../src/redis/client.js';
import { redactedUrl, type WebhookEndpoint } from '../src/webhooks/endpoints.js';
import { SIGNATURE_HEADER, signatureHeader, type WebhookEvent } from '../src/webhooks/events.js';
import type { WebhookStats } from '../src/webhooks/stats.js';

export interface WebhookWorkerDeps {
  config: Pick<
    Config,
    'WEBHOOK_SECRET' | 'WEBHOOK_TIMEOUT_MS' | 'WEBHOOK_CONCURRENCY' | 'WEBHOOK_BACKOFF_MS' | 'WEBHOOK_BACKOFF_CAP_MS'
  >;
  endpoints: readonly WebhookEndpoint[];
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  stats: Pick<WebhookStats, 'attempt'>;
  logger: Logger;
  /** An HTTP client to use instead of node:http (a test seam). */
  fetch?: typeof fetch;
  /** How often a long job records its progress (the events delivered so far), in ms. */
  progressEveryMs?: number;
}

/**
 * Delivers webhook events: one BullMQ Worker per receiver's queue. A job holds a run of events
 * (a persist batch's, WebhookJob); each event is one POST of its own JSON, signed at the time of
 * the attempt (`Parley-Signature`), bounded by WEBHOOK_TIMEOUT_MS; any 2xx acknowledges it,
 * anything else (or no answer in time) fails it. A redirect is not followed (a 3xx fails).
 *
 * At most WEBHOOK_CONCURRENCY POSTs are in flight per receiver and process, shared by the jobs of
 * its queue in hand, so that a receiver that times out fills only its own slots. The events a job
 * delivered are recorded in its progress (after an attempt that left some undelivered, and every
 * second of a long attempt), so that a retry sends only the others: a receiver gets an event again
 * only when its ack was not recorded (the worker died before it could). The job fails while any
 * event is undelivered and retries with the capped backoff; after WEBHOOK_ATTEMPTS it stays in its
 * queue's failed set, the dead-letter set Bull Board shows, its undelivered events in its progress.
 */
export function createWebhookWorker(deps: WebhookWorkerDeps) {
  const { config, logger } = deps;
  const secret = config.WEBHOOK_SECRET;
  const progressEveryMs = deps.progressEveryMs ?? 1000;
  if (deps.endpoints.length > 0 && secret === undefined)
    throw new Error('WEBHOOK_SECRET is required with WEBHOOK_URLS');

  /** One POST; throws why it was not acknowledged. */
  async function postEvent(url: string, event: WebhookEvent, agent: HttpAgent | HttpsAgent): Promise<void> {
    const body = JSON.stringify(event);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'parley-webhooks',
      [SIGNATURE_HEADER]: signatureHeader(secret ?? '', body),
    };
    if (deps.fetch) {
      const response = await deps
        .fetch(url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(config.WEBHOOK_TIMEOUT_MS),
        })
        .catch((err: unknown) => {
          const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
          throw new Error(
            timedOut ? `no answer within ${config.WEBHOOK_TIMEOUT_MS} ms` : `request failed: ${causeOf(err)}`,
          );
        });
      await response.arrayBuffer().catch(() => undefined);
      if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status}`);
      return;
    }
    // node:http with a keep-alive agent per receiver: a fraction of fetch's CPU per request, which
    // matters at one POST per message.
    const status = await new Promise<number>((resolve, reject) => {
      const target = new URL(url);
      const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
        target,
        { method: 'POST', headers, agent, timeout: config.WEBHOOK_TIMEOUT_MS },
        (res) => {
          // The body is not needed; reading it frees the connection for the next delivery.
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', (err) => reject(new Error(`request failed: ${causeOf(err)}`)));
        },
      );
      const timer = setTimeout(() => {
        request.destroy(new Error(`no answer within ${config.WEBHOOK_TIMEOUT_MS} ms`));
      }, config.WEBHOOK_TIMEOUT_MS);
      request.on('close', () => clearTimeout(timer));
      request.on('timeout', () => request.destroy(new Error(`no answer within ${config.WEBHOOK_TIMEOUT_MS} ms`)));
      request.on('error', (err) =>
        reject(err.message.startsWith('no answer within') ? err : new Error(`request failed: ${causeOf(err)}`)),
      );
      request.end(body);
    });
    // Any other status, a 3xx included (a redirect is not followed), fails the delivery.
    if (status < 200 || status > 299) throw new Error(`HTTP ${status}`);
  }

  const agents: (HttpAgent | HttpsAgent)[] = [];

  function deliverer(endpoint: WebhookEndpoint) {
    const slots = new Semaphore(config.WEBHOOK_CONCURRENCY);
    const agentOptions = { keepAlive: true, maxSockets: config.WEBHOOK_CONCURRENCY };
    const agent = endpoint.url.startsWith('https:') ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    agents.push(agent);
    const where = { endpoint: endpoint.id, url: redactedUrl(endpoint.url) };

    return async function deliver(job: Job): Promise<void> {
      const data = parseJobData('webhooks', webhookJobSchema, job);
      const before = webhookProgressSchema.safeParse(job.progress);
      const delivered = new Set(before.success ? before.data.delivered : []);
      const todo = data.events.filter((e) => !delivered.has(e.id));
      const failures = new Map<string, string>();
      let recorded = delivered.size;
      let newlyDelivered = 0;
      // A long attempt records what it delivered every second, so a worker that dies re-sends less.
      let saving: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        if (delivered.size === recorded) return;
        recorded = delivered.size;
        saving = job
          .updateProgress({ delivered: [...delivered] } satisfies WebhookProgress)
          .catch((err: unknown) => logger.warn({ ...where, jobId: job.id, err: errorText(err) }, 'progress not kept'));
      }, progressEveryMs);
      try {
        await Promise.all(
          todo.map((event) =>
            slots.run(async () => {
              try {
                await postEvent(data.url, event, agent);
                delivered.add(event.id);
                newlyDelivered++;
              } catch (err) {
                failures.set(event.id, errorText(err));
              }
            }),
          ),
        );
      } finally {
        clearInterval(timer);
        await saving;
      }

      const undelivered = data.events.filter((e) => !delivered.has(e.id)).map((e) => e.id);
      const error = failures.size > 0 ? [...failures.values()].at(-1) : undefined;
      const dead = undelivered.length > 0 && job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await deps.stats
        .attempt(endpoint.id, {
          delivered: newlyDelivered,
          failed: undelivered.length,
          ...(error !== undefined ? { error } : {}),
          dead,
        })
        .catch((err: unknown) => logger.warn({ ...where, err: errorText(err) }, 'webhook stats not counted'));
      if (undelivered.length === 0) return;
      // Recorded before the job fails: its retry (or Bull Board, for a dead one) sees what is left.
      await job.updateProgress({
        delivered: [...delivered],
        undelivered,
        ...(error !== undefined ? { lastError: error } : {}),
      } satisfies WebhookProgress);
      const log = {
        ...where,
        jobId: job.id,
        attemptsMade: job.attemptsMade + 1,
        undelivered: undelivered.length,
        err: error,
      };
      if (dead) logger.warn(log, 'webhook events given up on (their job is in the dead-letter set)');
      else logger.debug(log, 'webhook deliveries failed; retried');
      throw new Error(error ?? 'undelivered events');
    };
  }

  const workers = deps.endpoints.map((endpoint) => {
    const worker = new Worker(endpoint.queue.name, deliverer(endpoint), {
      connection: deps.connection,
      prefix: endpoint.queue.prefix,
      // Jobs in hand at once; their POSTs share the receiver's WEBHOOK_CONCURRENCY slots.
      concurrency: config.WEBHOOK_CONCURRENCY,
      settings: { backoffStrategy: backoffStrategy(webhookRetryPace(config)) },
    });
    const where = { endpoint: endpoint.id, url: redactedUrl(endpoint.url) };
    worker.on('failed', (job, err) => {
      if (err instanceof UnrecoverableError)
        logger.warn({ ...where, jobId: job?.id, err: err.message }, 'webhook job refused');
    });
    worker.on('error', (err) => logger.warn({ ...where, err: err.message }, 'webhook worker error'));
    return worker;
  });

  return {
    workers,
    async waitUntilReady(): Promise<void> {
      await Promise.all(workers.map((w) => w.waitUntilReady()));
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((w) => w.close()));
      for (const agent of agents) agent.destroy();
    },
  };
}

/** At most `size` tasks at once, the others waiting in order. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = Math.max(1, size);
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Why a request failed: its code (ECONNREFUSED and the like; fetch has it in `cause`). */
function causeOf(err: unknown): string {
  const own = err instanceof Error ? (err as Error & { code?: string }).code : undefined;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return own ?? cause?.code ?? cause?.message ?? errorText(err);
}
