import { AppError, type ErrorCode, toAppError } from '../domain/errors.js';
import { type ClientFrame, describeIssue, type Schemas } from '../domain/schemas.js';
import type { Logger } from '../logger.js';
import type { Connection } from '../realtime/connection-registry.js';
import type { HistoryService } from '../services/history-service.js';
import type { MembershipService } from '../services/membership-service.js';
import type { SendService } from '../services/send-service.js';
import { frames } from './frames.js';

export interface FrameHandlerDeps {
  schemas: Schemas;
  sender: SendService;
  history: HistoryService;
  membership: MembershipService;
  logger: Logger;
  /** Handlers for frame types owned by other modules (typing, read). */
  extra?: Partial<Record<ClientFrame['type'], (conn: Connection, frame: ClientFrame) => Promise<void>>>;
}

/**
 * Turns one client frame into its effect and answer. Whatever goes wrong is answered with an
 * `error` frame on that connection; nothing a client sends escapes this function.
 */
export function createFrameHandler(deps: FrameHandlerDeps) {
  const { schemas } = deps;

  async function sync(conn: Connection, chats: Record<string, number>): Promise<void> {
    for (const [chatId, lastSeen] of Object.entries(chats)) {
      try {
        await deps.membership.requireMember(chatId, conn.userId);
        for await (const page of deps.history.since(chatId, lastSeen)) {
          for (const m of page) {
            conn.send(frames.message(JSON.stringify(m)));
            // Keep pace with the client instead of buffering its whole history (backpressure).
            const drained = conn.drained?.();
            if (drained && !(await drained)) return;
          }
        }
      } catch (err) {
        conn.send(frames.error(toAppError(err), { chatId }));
      }
    }
    conn.send('{"type":"synced"}');
  }

  async function dispatch(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'send': {
        const accepted = await deps.sender.send({ chatId: frame.chatId, senderId: conn.userId, body: frame.body, clientMsgId: frame.clientMsgId });
        conn.send(frames.ack(frame.clientMsgId, accepted.json));
        return;
      }
      case 'sync':
        return sync(conn, frame.chats);
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

  /** Resolves with the code of the error the frame was answered with (null when none). */
  return async function handle(conn: Connection, raw: string): Promise<ErrorCode | null> {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      conn.send(frames.error(new AppError('validation_failed', 'frame must be valid JSON')));
      return 'validation_failed';
    }
    const parsed = schemas.frame.safeParse(json);
    if (!parsed.success) {
      const clientMsgId = (json as { clientMsgId?: unknown } | null)?.clientMsgId;
      const type = (json as { type?: unknown } | null)?.type;
      const known = ['send', 'sync', 'typing', 'read', 'ping'].includes(type as string);
      const message = known ? describeIssue(parsed.error) : `unknown frame type: ${JSON.stringify(type ?? null).slice(0, 40)}`;
      conn.send(
        frames.error(new AppError('validation_failed', message), {
          clientMsgId: typeof clientMsgId === 'string' ? clientMsgId.slice(0, 64) : null,
        }),
      );
      return 'validation_failed';
    }
    try {
      await dispatch(conn, parsed.data);
      return null;
    } catch (err) {
      const appErr = toAppError(err);
      if (appErr.code === 'internal') deps.logger.error({ err, type: parsed.data.type }, 'frame failed');
      conn.send(frames.error(appErr, { clientMsgId: parsed.data.type === 'send' ? parsed.data.clientMsgId : null }));
      return appErr.code;
    }
  };
}

export type FrameHandler = ReturnType<typeof createFrameHandler>;
