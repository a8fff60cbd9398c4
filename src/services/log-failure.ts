import { AppError } from '../domain/errors.js';
import { classifyFailure } from '../domain/failures.js';
import type { RedisCircuit } from '../infra/redis-circuit.js';

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
