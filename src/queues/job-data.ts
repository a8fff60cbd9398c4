import { type Job, UnrecoverableError } from 'bullmq';
import type { z } from 'zod';

/**
 * A job's data as its queue's schema says it must be. Data that does not fit can never succeed,
 * however often it is retried: the job fails at once with BullMQ's UnrecoverableError (no
 * retries, straight to the failed set where an operator sees it), and alone, since workers parse
 * a job before it joins a batch.
 */
export function parseJobData<S extends z.ZodType>(
  queue: string,
  schema: S,
  job: Pick<Job, 'id' | 'name' | 'data'>,
): z.output<S> {
  const parsed = schema.safeParse(job.data);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ');
  throw new UnrecoverableError(`invalid ${queue} job "${job.name}" (${job.id}): ${problems}`);
}

/** Refuses a job whose name its worker does not know (a job added by hand, or by another version). */
export function requireJobName(queue: string, job: Pick<Job, 'id' | 'name'>, names: readonly string[]): void {
  if (!names.includes(job.name)) throw new UnrecoverableError(`unknown ${queue} job "${job.name}" (${job.id})`);
}
