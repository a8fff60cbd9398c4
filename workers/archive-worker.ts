import { type Queue, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import type { ArchiveReport } from '../src/metrics/worker-metrics.js';
import { QUEUES, SCHEDULED_JOBS } from '../src/queues/definitions.js';
import { requireJobName } from '../src/queues/job-data.js';
import type { RedisClient } from '../src/redis/client.js';
import type { Archiver } from './archiver.js';

/** The archive queue's scheduled job (a run added by hand takes its name too). */
const ARCHIVE = SCHEDULED_JOBS.archive;

export interface ArchiveWorkerDeps {
  config: Pick<Config, 'QUEUE_PREFIX' | 'ARCHIVE_INTERVAL_MS'>;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  /** The `archive` queue (opened and closed by workers/main.ts with the others): the run's schedule. */
  queue: Queue;
  archiver: Archiver;
  logger: Logger;
  /** Called after each run with what it did (metrics). */
  onRun?: (report: ArchiveReport) => void;
}

/**
 * The archive queue's worker and its schedule. A BullMQ job scheduler (upsertJobScheduler, the
 * BullMQ 6 way) emits one job per ARCHIVE_INTERVAL_MS however many workers run; concurrency 1 per
 * worker keeps runs from piling up, and a run is safe beside another anyway. The job's return
 * value is the run's report, so Bull Board shows what each run did.
 */
export function createArchiveWorker(deps: ArchiveWorkerDeps) {
  const { config, queue } = deps;
  let closing = false;
  const worker = new Worker<Record<string, never>, ArchiveReport>(
    QUEUES.archive,
    async (job) => {
      // The data is not used; a job of another name was not meant for this worker.
      requireJobName(QUEUES.archive, job, [ARCHIVE.name]);
      const report = await deps.archiver.run(() => closing);
      deps.onRun?.(report);
      // Chats that failed are retried by the next run; the job fails so that Bull Board shows it.
      if (report.failedChats > 0) throw new Error(`archive run skipped ${report.failedChats} of ${report.chats} chats`);
      return report;
    },
    { connection: deps.connection, prefix: config.QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'archive worker error'));
  worker.on('failed', (job, err) => deps.logger.warn({ jobId: job?.id, err: err.message }, 'archive run failed'));

  return {
    worker,
    /** Registers (or updates) the schedule; with ARCHIVE_INTERVAL_MS = 0 it leaves the schedule alone. */
    async schedule(): Promise<void> {
      if (config.ARCHIVE_INTERVAL_MS === 0) {
        deps.logger.info('archive schedule not registered (ARCHIVE_INTERVAL_MS=0)');
        return;
      }
      await queue.upsertJobScheduler(
        ARCHIVE.schedulerId,
        { every: config.ARCHIVE_INTERVAL_MS },
        { name: ARCHIVE.name, data: {}, opts: ARCHIVE.options },
      );
    },
    /** Ends a run under way at its next chat (the next run, on any worker, goes on), then closes. */
    async close(): Promise<void> {
      closing = true;
      await worker.close();
    },
  };
}
