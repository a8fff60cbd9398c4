/**
 * What a failed Redis or PostgreSQL call means for the caller, told from what the drivers put on
 * the error (ioredis, pg and pg-pool, and the Node sockets under them). Pure: it reads the error's
 * fields and imports no driver, so every layer may ask. test/integration/failures.test.ts provokes
 * each case against real servers and closed ports, and fails when a driver changes what it raises.
 */
export type FailureKind =
  /**
   * ioredis refused the command before writing it: no connection, and the api's command
   * connection keeps no offline queue. It never reached Redis, so it may safely be done elsewhere.
   */
  | 'not-sent'
  /** Redis answered but refused the write (full, unable to persist, a replica, loading): nothing was written. */
  | 'refused'
  /** The dependency could not be reached, or the connection failed under the call: it may or may not have run. */
  | 'unreachable'
  /** Anything else (a bug, a constraint, bad input): not a dependency's state. */
  | 'other';

/** Node's socket error codes (`err.code`) for a server that cannot be reached or dropped the connection. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * PostgreSQL's SQLSTATEs (a pg DatabaseError's `code`) for a server going away: `admin_shutdown`
 * (a shutdown or pg_terminate_backend ended the session) and `cannot_connect_now` (still starting).
 */
const PG_GONE_CODES = new Set(['57P01', '57P03']);

/**
 * Redis error codes that refuse a write: full (`OOM`, maxmemory reached under noeviction), unable
 * to persist (`MISCONF`), a replica (`READONLY`), still loading its data (`LOADING`), or without
 * a reachable master (`MASTERDOWN`), or a Redis Cluster with a slot unserved (`CLUSTERDOWN`). The
 * client may retry; it is a 503, not our bug.
 */
const REDIS_REFUSAL_CODES = new Set(['OOM', 'MISCONF', 'READONLY', 'LOADING', 'MASTERDOWN', 'CLUSTERDOWN']);

/**
 * The failures the drivers raise as a plain Error, with no class or code of their own: only their
 * text tells them apart, so each is matched from its start, exactly as the driver writes it.
 */
const DRIVER_MESSAGES: readonly (readonly [start: string, kind: FailureKind])[] = [
  // ioredis, with enableOfflineQueue off, while the connection is down.
  ["Stream isn't writeable", 'not-sent'],
  // ioredis: no reply within commandTimeout.
  ['Command timed out', 'unreachable'],
  // ioredis: a command on a connection that was closed (or never opened, createClosedRedis).
  ['Connection is closed', 'unreachable'],
  // pg: the server closed the connection ('Connection terminated', '... unexpectedly'), and
  // pg-pool: a new connection timed out ('... due to connection timeout').
  ['Connection terminated', 'unreachable'],
  // pg-pool: no connection became free within connectionTimeoutMillis.
  ['timeout exceeded when trying to connect', 'unreachable'],
  // pg: a query on a client whose connection already failed, or that was ended.
  ['Client has encountered a connection error and is not queryable', 'unreachable'],
  ['Client was closed and is not queryable', 'unreachable'],
  // ioredis Cluster: offline queue off while the slots are not known yet (nothing was written).
  ["Cluster isn't ready and enableOfflineQueue options is false", 'not-sent'],
  // ioredis Cluster: MOVED/ASK kept pointing at a node that does not answer (a master down).
  ['Too many Cluster redirections', 'unreachable'],
];

/**
 * The code of a Redis error reply: by the protocol's convention, its first word ("OOM command
 * not allowed ..."), which ioredis leaves in the message rather than in a field of its own.
 */
function redisErrorCode(message: string): string | null {
  const space = message.indexOf(' ');
  const word = space > 0 ? message.slice(0, space) : '';
  return /^[A-Z]+$/.test(word) ? word : null;
}

export function classifyFailure(err: unknown): FailureKind {
  if (!(err instanceof Error)) return 'other';
  const code: unknown = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || PG_GONE_CODES.has(code))) return 'unreachable';
  // ioredis's error for a command in flight when the connection dropped, once its retries
  // (maxRetriesPerRequest, 0 on the api's command connection) are spent.
  if (err.name === 'MaxRetriesPerRequestError') return 'unreachable';
  // ioredis Cluster: no node answered a refresh of the slot map.
  if (err.name === 'ClusterAllFailedError') return 'unreachable';
  const replyCode = redisErrorCode(err.message);
  if (replyCode !== null && REDIS_REFUSAL_CODES.has(replyCode)) return 'refused';
  for (const [start, kind] of DRIVER_MESSAGES) if (err.message.startsWith(start)) return kind;
  return 'other';
}
