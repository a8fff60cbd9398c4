import type { Connection } from '../domain/connection.js';
import { AppError, type ErrorCode, toAppError } from '../domain/errors.js';
import { errorFrame } from '../domain/frames.js';
import { type ClientFrame, describeIssue, type Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';

/** A client frame of one type, as the schema parsed it. */
export type FrameOf<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

/**
 * What answers each type of client frame but `ping` (answered here): the features' handlers
 * (src/features/). A handler writes its own answers; whatever it throws is answered with an
 * `error` frame. `budget` is the connection's frame budget, for work beyond the frame itself.
 */
export type FrameHandlers = {
  readonly [T in Exclude<ClientFrame['type'], 'ping'>]?: (
    conn: Connection,
    frame: FrameOf<T>,
    budget: FrameBudget | undefined,
  ) => Promise<void>;
};

export interface FrameHandlerDeps {
  schemas: Schemas;
  handlers: FrameHandlers;
  logger: Logger;
}

type AnyHandler = (conn: Connection, frame: ClientFrame, budget: FrameBudget | undefined) => Promise<void>;

/**
 * Turns one client frame into its effect and answer. Whatever goes wrong is answered with an
 * `error` frame on that connection; nothing a client sends escapes this function.
 */
export function createFrameHandler(deps: FrameHandlerDeps) {
  const { schemas } = deps;

  async function dispatch(conn: Connection, frame: ClientFrame, budget: FrameBudget | undefined): Promise<void> {
    if (frame.type === 'ping') {
      conn.send(JSON.stringify({ type: 'pong', ref: frame.ref ?? null }));
      return;
    }
    // Each handler takes the frame type it is filed under.
    const handler = deps.handlers[frame.type] as AnyHandler | undefined;
    if (!handler) throw new AppError('validation_failed', `frame type '${frame.type}' is not supported here`);
    return handler(conn, frame, budget);
  }

  /**
   * Resolves with the code of the error the frame was answered with (null when none). `budget`
   * is the connection's frame budget, charged for work beyond the frame itself.
   */
  return async function handle(conn: Connection, raw: string, budget?: FrameBudget): Promise<ErrorCode | null> {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      conn.send(errorFrame(new AppError('validation_failed', 'frame must be valid JSON')));
      return 'validation_failed';
    }
    const parsed = schemas.frame.safeParse(json);
    if (!parsed.success) {
      const clientMsgId = (json as { clientMsgId?: unknown } | null)?.clientMsgId;
      const type = (json as { type?: unknown } | null)?.type;
      const known = ['send', 'sync', 'typing', 'read', 'edit', 'delete', 'react', 'ping'].includes(type as string);
      const message = known ? describeIssue(parsed.error) : `unknown frame type: ${describeType(type)}`;
      conn.send(
        errorFrame(new AppError('validation_failed', message), {
          clientMsgId: typeof clientMsgId === 'string' ? clientMsgId.slice(0, 64) : null,
        }),
      );
      return 'validation_failed';
    }
    try {
      await dispatch(conn, parsed.data, budget);
      return null;
    } catch (err) {
      const appErr = toAppError(err);
      if (appErr.code === 'internal') deps.logger.error({ err, type: parsed.data.type }, 'frame failed');
      const f = parsed.data;
      conn.send(errorFrame(appErr, { clientMsgId: 'clientMsgId' in f ? (f.clientMsgId ?? null) : null }));
      return appErr.code;
    }
  };
}

export type FrameHandler = ReturnType<typeof createFrameHandler>;

/** What the handler may charge against a connection's frame budget (see frame-guard.ts). */
export interface FrameBudget {
  /** 0 when `cost` tokens were taken, else the ms until they could be. */
  charge(cost: number): number;
}

/**
 * A refused frame's `type`, quoted for its error message. Never serialised whole: it is whatever
 * the client sent, and JSON.stringify of an array nested 30,000 deep overflows the stack.
 */
function describeType(type: unknown): string {
  if (typeof type === 'string') return JSON.stringify(type.slice(0, 40));
  if (type === null || type === undefined) return 'null';
  if (Array.isArray(type)) return 'an array';
  return typeof type === 'object' ? 'an object' : String(type).slice(0, 40);
}
