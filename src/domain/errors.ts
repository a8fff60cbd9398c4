import { classifyFailure } from './failures.js';

/**
 * The one table of error codes (docs/protocol.md "Errors") and each code's HTTP status. Every
 * boundary turns what it catches into an AppError; a WebSocket answers it with an `error` frame
 * and stays open (the close codes are CLOSE_CODES, below).
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

  /** The client's view: code, message and the details (e.g. clientMsgId, retryAfterMs). */
  toJSON(): { code: ErrorCode; message: string } & Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

/** True when Redis answered but refused to write (full, a replica, ...): reachable, yet unusable. */
export function isRedisRefusedError(err: unknown): boolean {
  return classifyFailure(err) === 'refused';
}

/** True when the error says a dependency (Redis, PostgreSQL) is unavailable, not that we erred. */
export function isUnavailableError(err: unknown): boolean {
  return classifyFailure(err) !== 'other';
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

/** The WebSocket close codes of the contract (docs/protocol.md; RFC 6455 and the 4000-4999 private range). */
export const CLOSE_CODES = {
  /** The server is shutting down. */
  goingAway: 1001,
  /** A flood: the rate limits kept being exceeded. */
  policyViolation: 1008,
  /** A frame over WS_MAX_PAYLOAD: sent by the ws library itself (its maxPayload), named here for the contract. */
  messageTooBig: 1009,
  /** The client did not read fast enough, or its membership check was lost; reconnect and `sync`. */
  slowConsumer: 4008,
  /** The session was revoked or expired. */
  sessionEnded: 4001,
} as const;

/** The text of anything thrown, for a log line or a message: an Error's message, anything else as a string. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
