import { type Queue, Worker } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { QUEUES, SCHEDULED_JOBS } from '../src/queues/definitions.js';
import { requireJobName } from '../src/queues/job-data.js';
import type { RedisClient } from '../src/redis/client.js';
import type { PresenceState } from '../src/services/presence-state.js';
import type { LastSeen, LastSeenStore } from '../src/stores/last-seen-store.js';

export interface PresenceWorkerDeps {
  config: Pick<Config, 'QUEUE_PREFIX' | 'PRESENCE_SWEEP_MS'>;
  /** BullMQ connection (maxRetriesPerRequest: null). */
  connection: RedisClient;
  /** The `presence` queue (opened and closed by workers/main.ts with the others): the sweep's schedule. */
  queue: Queue;
  state: PresenceState;
  lastSeen: LastSeenStore;
  chatIdsOf: (userId: string) => Promise<string[]>;
  logger: Logger;
}

/** The presence queue's scheduled job. */
const SWEEP = SCHEDULED_JOBS.presence;
/** Users handled per round of a sweep. */
const SWEEP_CHUNK = 200;

/**
 * The presence sweep: a job scheduler runs it every PRESENCE_SWEEP_MS on one worker at a time.
 * It finds users whose newest connection expired (their api process died or hung) and lets the
 * disconnect script decide: only the call that empties a user's set publishes the offline, so a
 * close racing the sweep, or two sweeps, never publish it twice. Last-seen times are written in
 * one statement per round.
 */
export function createPresenceWorker(deps: PresenceWorkerDeps) {
  const { config, state, queue } = deps;
  let closing = false;

  async function sweep(): Promise<number> {
    let offline = 0;
    for (;;) {
      const due = await state.due(SWEEP_CHUNK);
      const seen: LastSeen[] = [];
      await Promise.all(
        due.map(async (userId) => {
          const r = await state.disconnect(userId, null);
          if (!r.wentOffline) return;
          const at = new Date(r.lastSeen).toISOString();
          seen.push({ userId, at });
          await state.publish({ userId, status: 'offline', lastSeenAt: at, chatIds: await deps.chatIdsOf(userId) });
        }),
      );
      await deps.lastSeen.recordBatch(seen);
      offline += seen.length;
      // Closing: the next sweep, on any worker, takes the rest.
      if (due.length < SWEEP_CHUNK || closing) return offline;
    }
  }

  const worker = new Worker(
    QUEUES.presence,
    async (job) => {
      requireJobName(QUEUES.presence, job, [SWEEP.name]);
      return sweep();
    },
    { connection: deps.connection, prefix: config.QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('failed', (job, err) => deps.logger.warn({ jobId: job?.id, err: err.message }, 'presence sweep failed'));
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'presence worker error'));

  return {
    worker,
    /** Creates or updates the schedule (every worker does it; the scheduler id makes it one). */
    async schedule(): Promise<void> {
      await queue.upsertJobScheduler(
        SWEEP.schedulerId,
        { every: config.PRESENCE_SWEEP_MS },
        { name: SWEEP.name, opts: SWEEP.options },
      );
    },
    sweep,
    async close(): Promise<void> {
      closing = true;
      await worker.close();
    },
  };
}
