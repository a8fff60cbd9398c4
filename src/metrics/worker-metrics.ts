import { Counter, Histogram, type Registry } from 'prom-client';

/** What one archive run did (workers/archiver.ts returns it; metrics and job results show it). */
export interface ArchiveReport {
  /** Chats visited. */
  chats: number;
  /** Messages trimmed from active lists (each checked to be in PostgreSQL first). */
  trimmed: number;
  /** Messages PostgreSQL lacked past the grace period, whose chat got a new persist job (the repair sweep). */
  requeued: number;
  /** Messages PostgreSQL lacked that were no longer in the pending set, put back into it. */
  repended: number;
  /** Pending seqs PostgreSQL already held, cleared from the pending set. */
  reconciled: number;
  /** Chats whose keys now carry a TTL (everything in them persisted). */
  expiring: number;
  /** Chats the run could not finish (logged; the next run tries again). */
  failedChats: number;
  durationMs: number;
}

/** The worker process's own metrics, fed by the persist worker's onBatch and the archive runs. */
export function createWorkerMetrics(registry: Registry) {
  const registers = [registry];
  const batches = new Counter({
    name: 'parley_persist_batches_total',
    help: 'Batches written to PostgreSQL',
    registers,
  });
  const persisted = new Counter({
    name: 'parley_persist_messages_total',
    help: 'Messages in batches written to PostgreSQL',
    registers,
  });
  const inserted = new Counter({
    name: 'parley_persist_inserted_total',
    help: 'Rows that were new in PostgreSQL (retries excluded)',
    registers,
  });
  const batchSize = new Histogram({
    name: 'parley_persist_batch_size',
    help: 'Messages per INSERT',
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers,
  });
  const persistAge = new Histogram({
    name: 'parley_persist_lag_seconds',
    help: 'Persistence lag of each message: from its acceptance (createdAt) to its batch committed in PostgreSQL',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const archiveRuns = new Counter({ name: 'parley_archive_runs_total', help: 'Archive runs finished', registers });
  const archive = new Counter({
    name: 'parley_archive_actions_total',
    help: 'What archive runs did: trimmed, requeued, repended, reconciled, expiring, failed_chats',
    labelNames: ['action'],
    registers,
  });
  const archiveDuration = new Histogram({
    name: 'parley_archive_duration_seconds',
    help: 'Duration of one archive run',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers,
  });

  return {
    /** `createdAtMs`: when each message of the batch was accepted (ms since the epoch). */
    onBatch(size: number, insertedRows: number, createdAtMs: readonly number[] = []): void {
      batches.inc();
      persisted.inc(size);
      inserted.inc(insertedRows);
      batchSize.observe(size);
      const now = Date.now();
      // Clocks of two machines may disagree by a little; a negative lag says nothing.
      for (const at of createdAtMs) if (Number.isFinite(at)) persistAge.observe(Math.max(0, now - at) / 1000);
    },

    onArchive(report: ArchiveReport): void {
      archiveRuns.inc();
      archiveDuration.observe(report.durationMs / 1000);
      archive.inc({ action: 'trimmed' }, report.trimmed);
      archive.inc({ action: 'requeued' }, report.requeued);
      archive.inc({ action: 'repended' }, report.repended);
      archive.inc({ action: 'reconciled' }, report.reconciled);
      archive.inc({ action: 'expiring' }, report.expiring);
      archive.inc({ action: 'failed_chats' }, report.failedChats);
    },
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
