import type { Connection } from '../domain/connection.js';
import { AppError, type ErrorCode, toAppError } from '../domain/errors.js';
import { ackFrame, errorFrame, messageFrame } from '../domain/frames.js';
import { type ClientFrame, describeIssue, type Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';
import { encodeMessage } from '../message-log/message-log.js';
import type { HistoryService } from '../services/history-service.js';
import type { SendService } from '../services/send-service.js';
import { syncCost } from './frame-guard.js';

export interface FrameHandlerDeps {
  schemas: Schemas;
  sender: SendService;
  history: HistoryService;
  /**
   * Of chat ids outside the user's chat set, which exist and whether the user is a member, in
   * one query: a `sync` naming unknown or foreign chats costs one lookup, not one per chat.
   */
  accessOf: (userId: string, chatIds: string[]) => Promise<Map<string, boolean>>;
  logger: Logger;
  /** Called with the time from a `send` frame's handling to its ack written to the socket, in ms (metrics). */
  onAckWritten?: (ms: number) => void;
  /** Handlers for frame types owned by other modules (typing, read). */
  extra?: Partial<Record<ClientFrame['type'], (conn: Connection, frame: ClientFrame) => Promise<void>>>;
}

/**
 * Turns one client frame into its effect and answer. Whatever goes wrong is answered with an
 * `error` frame on that connection; nothing a client sends escapes this function.
 */
export function createFrameHandler(deps: FrameHandlerDeps) {
  const { schemas } = deps;

  /**
   * Why the user may not sync each chat outside their set (null: they may, the set lags behind a
   * join). The set is the same one live delivery uses, so it decides for the chats in it.
   */
  async function refusals(conn: Connection, chatIds: string[]): Promise<Map<string, AppError | null>> {
    const outside = chatIds.filter((chatId) => !conn.chats.has(chatId));
    const verdicts = new Map<string, AppError | null>();
    if (outside.length === 0) return verdicts;
    let access: Map<string, boolean>;
    try {
      access = await deps.accessOf(conn.userId, outside);
    } catch (err) {
      const appErr = toAppError(err);
      for (const chatId of outside) verdicts.set(chatId, appErr);
      return verdicts;
    }
    for (const chatId of outside) {
      const member = access.get(chatId);
      if (member === undefined) verdicts.set(chatId, new AppError('not_found', 'no such chat'));
      else verdicts.set(chatId, member ? null : new AppError('forbidden', 'not a member of this chat'));
    }
    return verdicts;
  }

  async function sync(conn: Connection, chats: Record<string, number>, budget?: FrameBudget): Promise<void> {
    const entries = Object.entries(chats);
    const waitMs = budget?.charge(syncCost(entries.length)) ?? 0;
    if (waitMs > 0)
      throw new AppError('rate_limited', 'too many chats synced at once; slow down', { retryAfterMs: waitMs });
    const refused = await refusals(
      conn,
      entries.map(([chatId]) => chatId),
    );
    for (const [chatId, lastSeen] of entries) {
      const refusal = refused.get(chatId);
      if (refusal) {
        conn.send(errorFrame(refusal, { chatId }));
        continue;
      }
      try {
        for await (const page of deps.history.since(chatId, lastSeen)) {
          for (const m of page) {
            conn.send(messageFrame(encodeMessage(m)));
            // Keep pace with the client instead of buffering its whole history (backpressure).
            const drained = conn.drained?.();
            if (drained && !(await drained)) return;
          }
        }
      } catch (err) {
        conn.send(errorFrame(toAppError(err), { chatId }));
      }
    }
    conn.send('{"type":"synced"}');
  }

  async function dispatch(conn: Connection, frame: ClientFrame, budget: FrameBudget | undefined): Promise<void> {
    switch (frame.type) {
      case 'send': {
        const started = performance.now();
        const accepted = await deps.sender.send({
          chatId: frame.chatId,
          senderId: conn.userId,
          body: frame.body,
          clientMsgId: frame.clientMsgId,
        });
        conn.send(ackFrame(frame.clientMsgId, accepted.json));
        deps.onAckWritten?.(performance.now() - started);
        return;
      }
      case 'sync':
        return sync(conn, frame.chats, budget);
      case 'ping':
        conn.send(JSON.stringify({ type: 'pong', ref: frame.ref ?? null }));
        return;
      default: {
        const handler = deps.extra?.[frame.type];
        if (!handler) throw new AppError('validation_failed', `frame type '${frame.type}' is not supported here`);
        return handler(conn, frame);
      }
    }
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
      const known = ['send', 'sync', 'typing', 'read', 'ping'].includes(type as string);
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
      conn.send(errorFrame(appErr, { clientMsgId: parsed.data.type === 'send' ? parsed.data.clientMsgId : null }));
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
