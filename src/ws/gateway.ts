import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { AppError, CLOSE_CODES, toAppError } from '../domain/errors.js';
import type { User } from '../domain/types.js';
import type { Logger } from '../logger.js';
import type { Connection, ConnectionRegistry } from '../realtime/connection-registry.js';
import type { AuthService } from '../services/auth-service.js';
import type { FrameHandler } from './frame-handler.js';

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
  /** Lifecycle hooks for presence and metrics. */
  onOpen?: (conn: Connection) => void;
  onClose?: (conn: Connection) => void;
}

const BEARER_PROTOCOL = 'bearer.';

function tokenOf(req: IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.find((p) => p.startsWith(BEARER_PROTOCOL))?.slice(BEARER_PROTOCOL.length);
}

function refuseUpgrade(socket: Duplex, err: AppError): void {
  const body = JSON.stringify({ error: err.toJSON() });
  const reason = err.status === 401 ? 'Unauthorized' : err.status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * The WebSocket endpoint GET /ws on the api's HTTP server: authenticates before the handshake
 * (a bad token never gets a socket), then registers the connection and feeds it frames.
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

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/ws') {
      return refuseUpgrade(socket, new AppError('not_found', 'no such route'));
    }
    let user: User;
    let chatIds: string[];
    try {
      user = await deps.auth.authenticate(tokenOf(req));
      chatIds = await deps.chatIdsOf(user.id);
    } catch (err) {
      return refuseUpgrade(socket, toAppError(err));
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, user, chatIds));
  }

  function accept(ws: WebSocket, user: User, chatIds: string[]): void {
    const conn: Connection = {
      id: randomUUID(),
      userId: user.id,
      chats: new Set(),
      send: (frame) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      },
    };
    let alive = true;
    ws.on('pong', () => (alive = true));
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, deps.heartbeatMs);
    heartbeat.unref();

    // Registered and `ready` sent in the same tick: no chat event can precede `ready`.
    deps.registry.add(conn, chatIds);
    sockets.set(conn, ws);
    conn.send(JSON.stringify({ type: 'ready', user, connectionId: conn.id }));
    deps.onOpen?.(conn);

    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        conn.send(JSON.stringify({ type: 'error', code: 'validation_failed', message: 'frames must be text' }));
        return;
      }
      void deps.handleFrame(conn, data.toString());
    });
    ws.on('error', (err) => deps.logger.debug({ err, connectionId: conn.id }, 'socket error'));
    ws.on('close', () => {
      clearInterval(heartbeat);
      deps.registry.remove(conn);
      sockets.delete(conn);
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
      wss.close();
    },

    /** Closes one connection with a named code (slow consumer, revoked session). */
    closeConnection(conn: Connection, code: number, reason: string): void {
      sockets.get(conn)?.close(code, reason);
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
