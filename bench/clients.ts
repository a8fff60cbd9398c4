import WebSocket from 'ws';
import { mapLimit } from './accounts.js';

/**
 * The load clients' side of the wire. Frames are classified from their bytes (the server writes
 * `{"type":"...` first) and only the clientMsgId is read, as digits, without building a string
 * or parsing JSON; anything unexpected falls back to JSON.parse.
 */

/**
 * Where a connection's frames go: the phase being measured. `g` is the operation's global index
 * (a send's or a change's: both carry it as their clientMsgId). `frame` is the ack's bytes, for a
 * sink that needs more of it than the index (the seq of a send, the rev of a change).
 */
export interface FrameSink {
  ack(conn: number, g: number, now: number, frame: Buffer): void;
  message(conn: number, g: number, now: number): void;
  /** A `message.updated` frame (edits, deletes, reactions): parsed, being a minority of the traffic. */
  updated(conn: number, message: { chatId: string; seq: number; rev: number }, now: number): void;
  error(conn: number, g: number, code: string): void;
}

const TYPE_PREFIX = Buffer.from('{"type":"');
const MESSAGE = Buffer.from('message"');
const ACK = Buffer.from('ack"');
const UPDATED = Buffer.from('message.updated"');
const SEQ = Buffer.from('"seq":');
const ERROR = Buffer.from('error"');
const CLIENT_MSG_ID = Buffer.from('"clientMsgId":"');

function matchesAt(buf: Buffer, at: number, what: Buffer): boolean {
  if (buf.length < at + what.length) return false;
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false;
  return true;
}

/** The first clientMsgId at or after `from` as a number when it is all digits (the bench's), else -1. */
export function clientMsgIndex(buf: Buffer, from = 0): number {
  const at = buf.indexOf(CLIENT_MSG_ID, from);
  if (at < 0) return -1;
  let n = 0;
  let i = at + CLIENT_MSG_ID.length;
  const start = i;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x22) break;
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return i > start && i < buf.length ? n : -1;
}

/** The first `"seq":` number at or after `from` (a send's ack: its message's seq), else -1. */
export function seqIn(buf: Buffer, from = 0): number {
  const at = buf.indexOf(SEQ, from);
  if (at < 0) return -1;
  let n = 0;
  let i = at + SEQ.length;
  const start = i;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return i > start ? n : -1;
}

const indexOfId = (id: unknown): number => (typeof id === 'string' && /^\d+$/.test(id) ? Number(id) : -1);

/** Routes one server frame to the sink. */
export function dispatch(buf: Buffer, conn: number, sink: FrameSink, now: number): void {
  if (matchesAt(buf, 0, TYPE_PREFIX)) {
    const at = TYPE_PREFIX.length;
    if (matchesAt(buf, at, MESSAGE)) return sink.message(conn, clientMsgIndex(buf, at), now);
    if (matchesAt(buf, at, ACK)) return sink.ack(conn, clientMsgIndex(buf, at), now, buf);
    // persisted, presence, typing, pong...: not measured
    if (!matchesAt(buf, at, ERROR) && !matchesAt(buf, at, UPDATED)) return;
  }
  const frame = JSON.parse(buf.toString()) as {
    type?: string;
    code?: string;
    clientMsgId?: unknown;
    message?: { clientMsgId?: unknown; chatId?: string; seq?: number; rev?: number };
  };
  if (frame.type === 'message') sink.message(conn, indexOfId(frame.message?.clientMsgId), now);
  else if (frame.type === 'message.updated') {
    const m = frame.message;
    if (m && typeof m.chatId === 'string' && typeof m.seq === 'number' && typeof m.rev === 'number')
      sink.updated(conn, { chatId: m.chatId, seq: m.seq, rev: m.rev }, now);
  } else if (frame.type === 'ack') sink.ack(conn, indexOfId(frame.clientMsgId), now, buf);
  else if (frame.type === 'error') sink.error(conn, indexOfId(frame.clientMsgId), frame.code ?? 'unknown');
}

export interface ConnectOptions {
  url: string;
  token: string;
  /** Source address of the socket (e.g. 127.0.0.2), to spread many sockets over more ports. */
  localAddress?: string;
  timeoutMs?: number;
}

/** Opens a WebSocket and resolves once the server's `ready` frame has arrived. */
export function connect(opts: ConnectOptions): Promise<WebSocket> {
  const url = `${opts.url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(opts.token)}`;
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    skipUTF8Validation: true,
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
  });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(new Error(`WebSocket to ${opts.url}: ${why}`));
    };
    const timer = setTimeout(() => fail('no ready frame in time'), opts.timeoutMs ?? 30_000);
    ws.once('message', (data) => {
      if (!matchesAt(data as Buffer, 0, Buffer.from('{"type":"ready"')))
        return fail(`first frame was not ready: ${String(data).slice(0, 100)}`);
      clearTimeout(timer);
      ws.removeAllListeners();
      resolve(ws);
    });
    ws.once('error', (err) => fail(err.message));
    ws.once('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode}`));
    ws.once('close', (code) => fail(`closed with ${code}`));
  });
}

/**
 * One WebSocket per load client (client i on api `apiOf[i]`, by default i % apis), feeding the
 * current sink. A socket that closes while the bench still uses it is counted: its messages will
 * show up as lost.
 */
export class LoadClients {
  sink: FrameSink | null = null;
  unexpectedCloses = 0;
  private closing = false;

  private constructor(private readonly sockets: WebSocket[]) {
    sockets.forEach((ws, i) => {
      ws.on('message', (data) => {
        const sink = this.sink;
        if (sink) dispatch(data as Buffer, i, sink, performance.now());
      });
      ws.on('error', () => undefined);
      ws.on('close', (code) => {
        if (this.closing) return;
        this.unexpectedCloses++;
        console.error(`bench: connection ${i} closed by the server (${code})`);
      });
    });
  }

  static async open(
    apiUrls: readonly string[],
    tokens: readonly string[],
    apiOf?: ArrayLike<number>,
  ): Promise<LoadClients> {
    const sockets: WebSocket[] = [];
    try {
      await mapLimit(tokens.length, 50, async (i) => {
        sockets[i] = await connect({ url: apiUrls[apiOf ? apiOf[i]! : i % apiUrls.length]!, token: tokens[i]! });
      });
    } catch (err) {
      for (const ws of sockets) ws?.terminate();
      throw err;
    }
    return new LoadClients(sockets);
  }

  get size(): number {
    return this.sockets.length;
  }

  send(i: number, frame: string): void {
    this.sockets[i]!.send(frame);
  }

  close(): void {
    this.closing = true;
    for (const ws of this.sockets) ws.terminate();
  }
}
