import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** True when the request asks to switch to WebSocket (the Upgrade header lists protocols). */
export function wantsWebSocket(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/**
 * The request's head as it came, minus the switch to another protocol: the Upgrade header and
 * the `upgrade` token of Connection. Node's parser decoded it as latin1, so it encodes back as such.
 */
function headWithoutUpgrade(req: IncomingMessage): Buffer {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    // Name and value alternate; the loop's bound keeps both in range.
    const name = req.rawHeaders[i] ?? '';
    const value = req.rawHeaders[i + 1] ?? '';
    const lower = name.toLowerCase();
    if (lower === 'upgrade') continue;
    if (lower === 'connection') {
      const rest = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && t.toLowerCase() !== 'upgrade');
      if (rest.length > 0) lines.push(`${name}: ${rest.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * Serves a request that asks to switch to another protocol than WebSocket (`Upgrade: h2c`, as
 * `curl --http2` sends) as the ordinary HTTP request it also is: a server may ignore the switch.
 * Node hands every request with an Upgrade header to the 'upgrade' listener, its parser already
 * detached from the socket, so the socket goes back to the HTTP server as a new connection
 * (documented: 'connection' may be emitted to inject one) whose first bytes are that request
 * without the switch. The server parses it again, its body and any pipelined request included,
 * and the connection stays an ordinary keep-alive one.
 */
export function serveAsHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
  server.emit('connection', socket);
}
