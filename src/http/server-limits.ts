import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import type { Logger } from '../logger.js';
import { EarlyAnswerResponse } from './early-answer.js';

/** What one HTTP connection may hold on to (the HTTP_* keys of the config). */
export interface HttpLimits {
  /** How long a client may take to send a request's headers, in ms. */
  headersTimeoutMs: number;
  /** How long a client may take to send a whole request, body included, in ms. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open, in ms. */
  keepAliveTimeoutMs: number;
  /** Most open HTTP connections; upgraded (WebSocket) connections do not count. */
  maxConnections: number;
}

export interface HttpServerDeps {
  fetch: (request: Request) => Response | Promise<Response>;
  limits: HttpLimits;
  logger: Logger;
}

/** Refusals are logged at most this often: a flood must not become a flood of log lines. */
const REFUSAL_LOG_MS = 10_000;

/**
 * The Node HTTP server under the Hono app, with the limits a slow or greedy client meets.
 * Node checks the header and request deadlines only every `connectionsCheckingInterval` (30 s by
 * default, so a 10 s deadline held for up to 40 s): it is set to a fraction of the shorter one.
 * A client past a deadline gets 408 and its connection is closed; an idle keep-alive connection
 * is closed after `keepAliveTimeout` (Node waits one second more than it advertises).
 */
export function createHttpServer(deps: HttpServerDeps): Server {
  const { limits } = deps;
  const server = createAdaptorServer({
    fetch: deps.fetch,
    // Unread request bodies are dealt with by EarlyAnswerResponse; the adapter's own cleanup
    // closes connections it announced as kept alive.
    autoCleanupIncoming: false,
    serverOptions: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingInterval(limits),
      ServerResponse: EarlyAnswerResponse,
    },
  }) as Server;
  capConnections(server, limits.maxConnections, deps.logger);
  return server;
}

/** A tenth of the shorter deadline, between 50 ms and 1 s: a deadline is enforced at most that late. */
function checkingInterval(limits: HttpLimits): number {
  return Math.min(1000, Math.max(50, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10)));
}

/**
 * Closes a new connection at once while `max` HTTP connections are open (Node's own
 * `maxConnections` would count WebSockets too). A connection stops counting when it closes or is
 * upgraded: the WebSocket gateway has caps of its own. Only the 'upgrade' event is listened to
 * here; the gateway alone answers it.
 */
function capConnections(server: Server, max: number, logger: Logger): void {
  const open = new Set<Duplex>();
  /** Refusals since the last log line (the first refusal is logged at once). */
  let refused = 0;
  let loggedAt = -Infinity;
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      socket.destroy();
      refused += 1;
      const now = performance.now();
      if (now - loggedAt >= REFUSAL_LOG_MS) {
        logger.warn({ max, refused }, 'HTTP connection cap reached: refusing new connections');
        loggedAt = now;
        refused = 0;
      }
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  server.on('upgrade', (_req, socket: Duplex) => open.delete(socket));
}
