import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import { errorText } from '../src/domain/errors.js';
import type { Logger } from '../src/logger.js';
import { backoffStrategy, webhookJobSchema, webhookRetryPace } from '../src/queues/definitions.js';
import { parseJobData } from '../src/queues/job-data.js';
import type { RedisClient } from '../src/redis/client.js';
import { redactedUrl, type WebhookEndpoint } from '../src/webhooks/endpoints.js';
import { SIGNATURE_HEADER, signatureHeader } from '../src/webhooks/events.js';
import type { WebhookStats } from '../src/webhooks/stats.js';

export interface WebhookWorkerDeps {
  config: Pick<
    Config,
    'WEBHOOK_SECRET' | 'WEBHOOK_TIMEOUT_MS' | 'WEBHOOK_CONCURRENCY' | 'WEBHOOK_BACKOFF_MS' | 'WEBHOOK_BACKOFF_CAP_MS'
  >;
  endpoints: readonly WebhookEndpoint[];
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  stats: Pick<WebhookStats, 'delivered' | 'failed'>;
  logger: Logger;
  /** The HTTP client (global fetch unless a test gives another). */
  fetch?: typeof fetch;
}

/**
 * Delivers webhook events: one BullMQ Worker per receiver's queue, WEBHOOK_CONCURRENCY deliveries in
 * flight each, so that a receiver that times out fills only its own slots. A delivery is one POST of
 * the event's JSON, signed at the time of the attempt (`Parley-Signature`), bounded by
 * WEBHOOK_TIMEOUT_MS; any 2xx acknowledges it, anything else (or no answer in time) fails the
 * attempt, retried with the capped backoff; after WEBHOOK_ATTEMPTS the job stays in its queue's
 * failed set, the dead-letter set Bull Board shows. A redirect is not followed (a 3xx fails).
 */
export function createWebhookWorker(deps: WebhookWorkerDeps) {
  const { config, logger } = deps;
  const secret = config.WEBHOOK_SECRET;
  const post = deps.fetch ?? fetch;
  if (deps.endpoints.length > 0 && secret === undefined)
    throw new Error('WEBHOOK_SECRET is required with WEBHOOK_URLS');

  async function deliver(job: Job): Promise<void> {
    const data = parseJobData('webhooks', webhookJobSchema, job);
    const body = JSON.stringify(data.event);
    let response: Response;
    try {
      response = await post(data.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'parley-webhooks',
          [SIGNATURE_HEADER]: signatureHeader(secret ?? '', body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.WEBHOOK_TIMEOUT_MS),
      });
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new Error(
        timedOut ? `no answer within ${config.WEBHOOK_TIMEOUT_MS} ms` : `request failed: ${causeOf(err)}`,
      );
    }
    // The body is not needed; reading it frees the connection for the next delivery.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status}`);
  }

  const workers = deps.endpoints.map((endpoint) => {
    const worker = new Worker(endpoint.queue.name, deliver, {
      connection: deps.connection,
      prefix: endpoint.queue.prefix,
      concurrency: config.WEBHOOK_CONCURRENCY,
      settings: { backoffStrategy: backoffStrategy(webhookRetryPace(config)) },
    });
    const where = { endpoint: endpoint.id, url: redactedUrl(endpoint.url) };
    worker.on('completed', () => {
      deps.stats
        .delivered(endpoint.id)
        .catch((err: unknown) => logger.warn({ ...where, err: errorText(err) }, 'webhook stats not counted'));
    });
    worker.on('failed', (job, err) => {
      const dead =
        err instanceof UnrecoverableError || (job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1));
      deps.stats
        .failed(endpoint.id, err.message, dead)
        .catch((e: unknown) => logger.warn({ ...where, err: errorText(e) }, 'webhook stats not counted'));
      const log = { ...where, jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message };
      if (dead) logger.warn(log, 'webhook event given up on (in the dead-letter set)');
      else logger.debug(log, 'webhook delivery failed; retried');
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
    },
  };
}

/** Why fetch failed, as undici says it (ECONNREFUSED and the like are in `cause`). */
function causeOf(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? errorText(err);
}
