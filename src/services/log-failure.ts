import { AppError } from '../domain/errors.js';
import { classifyFailure } from '../domain/failures.js';
import type { RedisCircuit } from '../infra/redis-circuit.js';
import type { MessageLog } from '../message-log/message-log.js';

/**
 * What a failed message-log call (an append or a change) means for the send or change that made
 * it. It returns only when the call never reached Redis (no connection, no offline queue): the
 * circuit is tripped and the caller may safely write to PostgreSQL instead. Anything else throws
 * the answer: Redis
 * refused the write (full under noeviction: nothing was written, Redis is reachable, the client
 * retries later, docs/operations.md), or the failure is ambiguous (the script may have run), so
 * the client is told to retry with its clientMsgId.
 */
export function logFailure(err: unknown, circuit: RedisCircuit, what: 'send' | 'change'): void {
  const failure = classifyFailure(err);
  if (failure === 'not-sent') {
    circuit.trip(`${what} could not reach redis`);
    return;
  }
  if (failure === 'refused') {
    throw new AppError(
      'unavailable',
      'message store is full or refusing writes, retry later with the same clientMsgId',
    );
  }
  circuit.recordFailure();
  throw new AppError('unavailable', 'message store unavailable, retry with the same clientMsgId');
}

/**
 * Adds the persist jobs of claims a send or change took; a failure is `unavailable` naming what
 * was accepted (the message is in Redis: a retry with the same clientMsgId claims it again and
 * adds the job; if even that fails, the next send does, or the archive's repair sweep).
 */
export async function enqueueClaims(
  log: Pick<MessageLog, 'enqueue'>,
  claims: Parameters<MessageLog['enqueue']>[0],
  what: 'message' | 'change',
): Promise<void> {
  try {
    await log.enqueue(claims);
  } catch {
    throw new AppError(
      'unavailable',
      `${what} accepted but not yet queued for storage; retry with the same clientMsgId`,
    );
  }
}
