import WebSocket from 'ws';

/** A frame from the server, loosely typed for assertions. */
export type Frame = { type: string } & Record<string, unknown>;

/** Matches the `message` frame of the message with this id. */
export const messageWithId =
  (id: string) =>
  (f: Frame): boolean =>
    f.type === 'message' && (f.message as { id: string }).id === id;

/**
 * A real WebSocket client that records every frame and lets a test wait for the frames it
 * expects (by event, never by sleeping).
 */
export class TestSocket {
  readonly frames: Frame[] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.poke();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        this.poke();
        resolve(code);
      }),
    );
  }

  private poke(): void {
    this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  of(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** Resolves once `check(frames)` holds; rejects after `timeoutMs` saying what was awaited. */
  until(check: (frames: Frame[]) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (check(this.frames)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `timed out waiting for ${what}; got ${this.frames.length} frames, last: ${JSON.stringify(this.frames.at(-1))}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ check: () => check(this.frames), resolve: done });
    });
  }

  /** The first frame (after `from`) matching the predicate, once it has arrived. */
  async next(predicate: (f: Frame) => boolean, what: string, from = 0, timeoutMs?: number): Promise<Frame> {
    await this.until((fs) => fs.slice(from).some(predicate), what, timeoutMs);
    return this.frames.slice(from).find(predicate)!;
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve(this.closeCode ?? 1005);
    this.ws.close();
    return this.closed;
  }
}

/** Opens a socket with the token in the query string and waits for `ready`. */
export async function connectClient(
  baseUrl: string,
  token: string,
  opts: { viaProtocol?: boolean } = {},
): Promise<TestSocket> {
  const wsUrl =
    baseUrl.replace(/^http/, 'ws') + '/ws' + (opts.viaProtocol ? '' : `?token=${encodeURIComponent(token)}`);
  const ws = new WebSocket(wsUrl, opts.viaProtocol ? [`bearer.${token}`] : undefined);
  const socket = new TestSocket(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  await socket.next((f) => f.type === 'ready', 'ready');
  return socket;
}

/** Attempts an upgrade and returns the HTTP status it was refused with (or 101). */
export function upgradeStatus(baseUrl: string, token: string | null): Promise<number> {
  const wsUrl = baseUrl.replace(/^http/, 'ws') + '/ws' + (token === null ? '' : `?token=${encodeURIComponent(token)}`);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.once('open', () => (ws.close(), resolve(101)));
    ws.once('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
    ws.once('error', (err) => (err.message.includes('Unexpected server response') ? undefined : reject(err)));
  });
}
