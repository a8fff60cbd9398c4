import { type Queue, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { QUEUES, SCHEDULED_JOBS } from '../src/queues/definitions.js';
import { requireJobName } from '../src/queues/job-data.js';
import type { RedisClient } from '../src/redis/client.js';
import type { SessionStore } from '../src/stores/session-store.js';

/** The session-purge queue's scheduled job. */
const PURGE = SCHEDULED_JOBS.sessionPurge;

/** What one purge did (the job's return value, shown in Bull Board). */
export interface SessionPurgeReport {
  deleted: number;
  batches: number;
}

export interface SessionPurgeDeps {
  config: Pick<Config, 'QUEUE_PREFIX' | 'SESSION_PURGE_INTERVAL_MS' | 'SESSION_PURGE_BATCH'>;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  /** The `session-purge` queue (opened and closed by workers/main.ts with the others): the purge's schedule. */
  queue: Queue;
  sessions: Pick<SessionStore, 'purgeExpired'>;
  logger: Logger;
}

/**
 * Deletes expired sessions. An expired token is already refused (the lookup checks expires_at),
 * but its row would stay forever: the table and its indexes would grow with every login ever
 * made. A job scheduler runs the purge every SESSION_PURGE_INTERVAL_MS on one worker at a time;
 * each run deletes SESSION_PURGE_BATCH rows per statement until a statement finds fewer, so no
 * statement holds its locks long, however large the backlog.
 */
export function createSessionPurge(deps: SessionPurgeDeps) {
  const { config, queue } = deps;

  async function purge(): Promise<SessionPurgeReport> {
    const report: SessionPurgeReport = { deleted: 0, batches: 0 };
    for (;;) {
      const deleted = await deps.sessions.purgeExpired(config.SESSION_PURGE_BATCH);
      report.deleted += deleted;
      report.batches++;
      if (deleted < config.SESSION_PURGE_BATCH) return report;
    }
  }

  const worker = new Worker<Record<string, never>, SessionPurgeReport>(
    QUEUES.sessionPurge,
    async (job) => {
      // The data is not used; a job of another name was not meant for this worker.
      requireJobName(QUEUES.sessionPurge, job, [PURGE.name]);
      return purge();
    },
    { connection: deps.connection, prefix: config.QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'session purge worker error'));
  worker.on('failed', (job, err) => deps.logger.warn({ jobId: job?.id, err: err.message }, 'session purge failed'));

  return {
    worker,
    purge,
    /** Waits for the worker and registers (or updates) the schedule; SESSION_PURGE_INTERVAL_MS = 0 leaves it alone. */
    async start(): Promise<void> {
      await worker.waitUntilReady();
      if (config.SESSION_PURGE_INTERVAL_MS === 0) {
        deps.logger.info('session purge not scheduled (SESSION_PURGE_INTERVAL_MS=0)');
        return;
      }
      await queue.upsertJobScheduler(
        PURGE.schedulerId,
        { every: config.SESSION_PURGE_INTERVAL_MS },
        { name: PURGE.name, data: {}, opts: PURGE.options },
      );
    },
    async close(): Promise<void> {
      await worker.close();
    },
  };
}
