import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How long a connection closed while its request body was still arriving goes on reading (and
 * dropping) what the client sends after our FIN. Closing the socket at once would answer those
 * bytes with a TCP reset: a client still uploading then sees EPIPE or ECONNRESET, and over a real
 * network the reset can overtake the answer it was about to read.
 */
export const LINGER_MS = 2000;

/**
 * The HTTP server's response class (Node's `ServerResponse` server option), for answers given
 * before the request body was read: a 413 from the body limit, a 401 from the auth middleware on
 * a POST. Such an answer says `Connection: close` and the connection ends cleanly, because
 * what is still on the wire is the rest of a body nobody will read, and a keep-alive client
 * would send its next request behind it.
 *
 * The fetch adapter's own cleanup (`autoCleanupIncoming`, which must be off) answered
 * `keep-alive`, tried to drain the body while the adapter's body stream kept pausing it, and
 * destroyed the socket 500 ms later under whatever request the client had sent next.
 */
export class EarlyAnswerResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** This answer went out before the request body was read, with `Connection: close`. */
  private closing = false;

  constructor(...args: [req: Request]) {
    // Node passes an options object after the request (highWaterMark, ...): the spread keeps it.
    super(...args);
    // Added before Node's own 'finish' handler (Node adds it after constructing the response),
    // which frees the connection for the next request or closes it: the body goes first.
    this.once('finish', () => this.settleBody());
  }

  // Every way of sending headers (hono's writeHead, Node's implicit headers) comes through here.
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    // Whether the rest of the body has reached the server yet is a race between the answer and
    // the client's packets; whether the app read it is not. So any unread body closes.
    if (!this.headersSent && bodyUnread(this.req)) {
      this.closing = true;
      this.setHeader('connection', 'close');
    }
    return (super.writeHead as (...args: unknown[]) => this).call(this, statusCode, ...rest);
  }

  private settleBody(): void {
    const req = this.req;
    if (req.readableEnded) return;
    // Whatever started reading the body (the adapter's stream) is done with it, and would keep the
    // socket paused. Node drops an unread body itself only when nothing ever read from it.
    req.removeAllListeners('data');
    req.resume();
    // A body that wholly arrived sits in memory: closing sends no reset. One still arriving does.
    if (this.closing && !req.complete && this.socket) lingerOnClose(this.socket);
  }
}

/** The request has a body (a length above 0, or chunked) that was not read to its end. */
function bodyUnread(req: IncomingMessage): boolean {
  if (req.readableEnded) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Node closes the connection after a `Connection: close` answer with `socket.destroySoon()`:
 * FIN, then destroy. This socket instead half-closes and keeps reading until the client closes
 * its side (Node's parser sees the end and destroys it), or LINGER_MS passes.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = () => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
