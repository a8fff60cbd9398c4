import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Connection } from '../domain/connection.js';
import { AppError, CLOSE_CODES, toAppError } from '../domain/errors.js';
import { errorFrame } from '../domain/frames.js';
import type { Logger } from '../logger.js';
import type { ConnectionRegistry } from '../realtime/connection-registry.js';
import type { AuthService, SessionInfo } from '../services/auth-service.js';
import { type BackpressureLimits, createOutbox } from './backpressure.js';
import { clientMsgIdOf, createFrameGuard, type FrameGuardLimits } from './frame-guard.js';
import type { FrameHandler } from './frame-handler.js';
import { HeartbeatWheel } from './heartbeat-wheel.js';
import { serveAsHttp, wantsWebSocket } from './other-upgrades.js';
import { createSessionTracker } from './session-tracker.js';
import { type ConnectionAdmission, type ConnectionLimits, createUpgradeSlots } from './upgrade-slots.js';

export interface GatewayDeps {
  server: Server;
  auth: AuthService;
  registry: ConnectionRegistry;
  handleFrame: FrameHandler;
  /** The chats whose events a new connection of this user receives. */
  chatIdsOf: (userId: string) => Promise<string[]>;
  logger: Logger;
  maxPayload: number;
  heartbeatMs: number;
  /** Outgoing buffer bounds per socket (slow consumers). */
  backpressure: BackpressureLimits;
  /** Incoming frame limits per connection (floods). */
  frameLimits: FrameGuardLimits;
  /** How many connections this process, and one user, may hold. */
  limits: ConnectionLimits;
  /** Records each connection before its upgrade and counts them per user across processes (presence). */
  admission?: ConnectionAdmission;
  /** The socket opened (after `ready`) or closed: the features' hooks (presence, metrics). */
  onOpen?: (conn: Connection) => void;
  onClose?: (conn: Connection) => void;
}

const BEARER_PROTOCOL = 'bearer.';

function requestTarget(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return null;
  }
}

function tokenOf(url: URL, req: IncomingMessage): string | undefined {
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.find((p) => p.startsWith(BEARER_PROTOCOL))?.slice(BEARER_PROTOCOL.length);
}

/**
 * A module-level listener on purpose: a closure made in the upgrade handler would keep that
 * call's whole scope (session, slot, ...) alive as long as the socket.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function refuseUpgrade(socket: Duplex, err: AppError): void {
  const body = JSON.stringify({ error: err.toJSON() });
  const reason =
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      404: 'Not Found',
      429: 'Too Many Requests',
      500: 'Internal Server Error',
    }[err.status] ?? 'Service Unavailable';
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * The WebSocket endpoint GET /ws on the api's HTTP server: authenticates and counts before the
 * handshake (a bad token, or one connection too many, never gets a socket), then registers the
 * connection and feeds it frames.
 */
export function createGateway(deps: GatewayDeps) {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: deps.maxPayload,
    // Echo the bearer subprotocol when the client authenticated with it, as browsers require.
    handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith(BEARER_PROTOCOL)) ?? false,
  });
  const sockets = new Map<Connection, WebSocket>();
  const heartbeats = new HeartbeatWheel(deps.heartbeatMs);
  const sessions = createSessionTracker((conn) => sockets.get(conn)?.close(CLOSE_CODES.sessionEnded, 'session ended'));
  const slots = createUpgradeSlots({ limits: deps.limits, registry: deps.registry, admission: deps.admission });

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', destroyOnError);
    if (!wantsWebSocket(req)) return serveAsHttp(deps.server, req, socket, head);
    // A request target `new URL` cannot parse is a bad request, not a crash.
    const url = requestTarget(req);
    if (!url) return refuseUpgrade(socket, new AppError('validation_failed', 'bad request target'));
    if (url.pathname !== '/ws') return refuseUpgrade(socket, new AppError('not_found', 'no such route'));
    // Before the token is even checked: a full process spends nothing on more.
    const slot = slots.take();
    if (!slot)
      return refuseUpgrade(
        socket,
        new AppError('unavailable', 'this server holds all the connections it may; try again later'),
      );
    const connectionId = randomUUID();
    let session: SessionInfo;
    try {
      session = await deps.auth.session(tokenOf(url, req));
      const userId = session.user.id;
      await slot.admit(userId, connectionId);
      // Registered before its chats are read: a membership change published meanwhile is applied.
      await slot.register(() => deps.chatIdsOf(userId));
    } catch (err) {
      slot.release();
      return refuseUpgrade(socket, toAppError(err));
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      slot.opened();
      accept(ws, socket, session, connectionId);
    });
    if (slot.settled) return;
    // ws refused the handshake itself (a bad key or method) and is closing it, or the client left.
    if (socket.destroyed) slot.release();
    else socket.once('close', () => slot.release());
  }

  function accept(ws: WebSocket, socket: Duplex, session: SessionInfo, connectionId: string): void {
    const { user } = session;
    const outbox = createOutbox(ws, socket, deps.backpressure, {
      onSlowConsumer: (bufferedBytes) =>
        deps.logger.warn({ connectionId, userId: user.id, bufferedBytes }, 'slow consumer closed'),
    });
    const guard = createFrameGuard(deps.frameLimits);
    const refused = () => {
      if (!guard.refused() || ws.readyState !== WebSocket.OPEN) return;
      deps.logger.warn({ connectionId, userId: user.id }, 'flooding connection closed');
      ws.close(CLOSE_CODES.policyViolation, 'too many frames');
    };
    const stopHeartbeat = heartbeats.add(ws);

    // Registered and `ready` sent in the same tick: no chat event can precede `ready`.
    const conn = deps.registry.attach({
      id: connectionId,
      userId: user.id,
      send: outbox.send,
      drained: outbox.drained,
      close: (code, reason) => ws.close(code, reason),
    });
    sockets.set(conn, ws);
    sessions.track(conn, session);
    // Revoked while this upgrade was being authorised: end it like the others (a JWT cannot be revoked).
    if (!session.external && deps.auth.isRevoked(session.tokenHash)) sessions.end(session.tokenHash);
    conn.send(JSON.stringify({ type: 'ready', user, connectionId: conn.id }));
    deps.onOpen?.(conn);

    ws.on('message', (data, isBinary) => {
      // Frames that were already on the wire when the socket began closing are not acted on.
      if (ws.readyState !== WebSocket.OPEN) return;
      const waitMs = guard.admit();
      if (waitMs > 0) {
        const err = new AppError('rate_limited', 'too many frames; slow down', { retryAfterMs: waitMs });
        conn.send(errorFrame(err, { clientMsgId: isBinary ? null : clientMsgIdOf(data.toString()) }));
        return refused();
      }
      if (isBinary) {
        conn.send(JSON.stringify({ type: 'error', code: 'validation_failed', message: 'frames must be text' }));
        return;
      }
      deps.handleFrame(conn, data.toString(), guard).then(
        (code) => code === 'rate_limited' && refused(),
        // handleFrame answers everything itself; this is the last line against a crash.
        (err: unknown) => deps.logger.error({ err, connectionId }, 'frame handler failed'),
      );
    });
    ws.on('error', (err) => deps.logger.debug({ err, connectionId: conn.id }, 'socket error'));
    ws.on('close', () => {
      stopHeartbeat();
      deps.registry.remove(conn);
      sockets.delete(conn);
      sessions.untrack(conn);
      deps.onClose?.(conn);
    });
  }

  const upgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void onUpgrade(req, socket, head);
  deps.server.on('upgrade', upgradeListener);

  return {
    /** Closes every socket with 1001 (going away) and waits until they are gone. */
    async close(): Promise<void> {
      deps.server.off('upgrade', upgradeListener);
      const closed = [...sockets.values()].map(
        (ws) =>
          new Promise<void>((resolve) => {
            ws.once('close', () => resolve());
            ws.close(CLOSE_CODES.goingAway, 'server shutting down');
            setTimeout(() => (ws.terminate(), resolve()), 2000).unref();
          }),
      );
      await Promise.all(closed);
      heartbeats.stop();
      wss.close();
    },

    /** Closes this process's sockets of a revoked session with 4001; returns how many. */
    endSession(tokenHash: string): number {
      return sessions.end(tokenHash);
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
