/**
 * The one table of error codes (PROTOCOL.md "Errors"): each code's HTTP status and, where the
 * error ends a WebSocket, its close code. Every boundary turns what it catches into an AppError.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400 },
  unauthorized: { status: 401 },
  forbidden: { status: 403 },
  not_found: { status: 404 },
  conflict: { status: 409 },
  payload_too_large: { status: 413 },
  rate_limited: { status: 429 },
  unavailable: { status: 503 },
  internal: { status: 500 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields for the client, e.g. the clientMsgId a refused send carried. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Error codes of a dependency that cannot be reached (Node sockets, pg, ioredis). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P03']);
const UNREACHABLE_TEXT = /Connection terminated|connect ECONNREFUSED|Stream isn't writeable|Command timed out|Connection is closed|timeout exceeded when trying to connect/i;

/** True when the error says a dependency (Redis, PostgreSQL) is unreachable, not that we erred. */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (typeof code === 'string' && UNREACHABLE.has(code)) || UNREACHABLE_TEXT.test(err.message);
}

/**
 * Anything thrown, as an AppError: a dependency outage becomes `unavailable`, anything else
 * unknown becomes `internal` without leaking its text.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isUnavailableError(err)) return new AppError('unavailable', 'a dependency is unavailable, try again');
  return new AppError('internal', 'internal error');
}

/** WebSocket close codes the server uses (RFC 6455 and the 4000-4999 private range). */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  /** The client did not read fast enough; reconnect and `sync`. */
  slowConsumer: 4008,
  /** The session was revoked or expired. */
  sessionEnded: 4001,
} as const;
