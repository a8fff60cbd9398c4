import WebSocket from 'ws';

/** What one acked send looked like, as the client saw it. */
export interface Acked {
  clientMsgId: string;
  chatId: string;
  senderId: string;
  seq: number;
  id: string;
  /** Attempts it took (1 = no retry). */
  attempts: number;
}

export interface LoadClientOptions {
  userId: string;
  token: string;
  chatId: string;
  /** Api base URLs; the client moves to the next one when its connection fails. */
  urls: string[];
  /** Pause between sends, in ms. */
  intervalMs: number;
  /** How long to wait for an ack before retrying the same clientMsgId. */
  ackTimeoutMs: number;
}

/**
 * A client that behaves like a real one under faults: it sends one message at a time, and until
 * the message is acked it retries it with the same clientMsgId, reconnecting (to another api
 * if need be) whenever its socket fails. It records every ack.
 */
export class LoadClient {
  readonly acked: Acked[] = [];
  private ws: WebSocket | undefined;
  private urlIndex: number;
  private running = false;
  private counter = 0;
  private waiting: { clientMsgId: string; resolve: (a: Acked | null) => void } | undefined;
  private done: Promise<void> | undefined;
  private gaveUp = false;

  constructor(
    private readonly opts: LoadClientOptions,
    startAt: number,
  ) {
    this.urlIndex = startAt % opts.urls.length;
  }

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  /** Stops after the message under way is acked, or after `graceMs` (then it stays unacked). */
  async stop(graceMs = 30_000): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.gaveUp = true;
    this.ws?.terminate();
  }

  private async connect(): Promise<WebSocket> {
    for (;;) {
      const api = this.opts.urls[this.urlIndex % this.opts.urls.length];
      if (api === undefined) throw new Error('a load client needs the url of an api');
      const url = api.replace(/^http/, 'ws');
      const ws = new WebSocket(`${url}/ws?token=${encodeURIComponent(this.opts.token)}`);
      const ok = await new Promise<boolean>((resolve) => {
        ws.once('message', () => resolve(true)); // `ready`
        ws.once('error', () => resolve(false));
        ws.once('close', () => resolve(false));
        ws.once('unexpected-response', () => resolve(false));
      });
      if (ok) {
        ws.on('message', (data) => this.onFrame(data.toString()));
        ws.on('close', () => this.waiting?.resolve(null));
        ws.on('error', () => undefined);
        return ws;
      }
      ws.terminate();
      this.urlIndex++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private onFrame(raw: string): void {
    const frame = JSON.parse(raw) as {
      type: string;
      clientMsgId?: string;
      message?: Omit<Acked, 'clientMsgId' | 'attempts'>;
    };
    if (!this.waiting || frame.clientMsgId !== this.waiting.clientMsgId) return;
    if (frame.type === 'ack' && frame.message) {
      const m = frame.message;
      this.waiting.resolve({
        clientMsgId: frame.clientMsgId,
        chatId: m.chatId,
        senderId: m.senderId,
        seq: m.seq,
        id: m.id,
        attempts: 0,
      });
    } else if (frame.type === 'error') {
      this.waiting.resolve(null);
    }
  }

  private attempt(clientMsgId: string): Promise<Acked | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), this.opts.ackTimeoutMs);
      this.waiting = {
        clientMsgId,
        resolve: (a) => {
          clearTimeout(timer);
          this.waiting = undefined;
          resolve(a);
        },
      };
      const ws = this.ws;
      if (!ws) return this.waiting.resolve(null); // not connected: the attempt failed, as a dead socket's does
      try {
        ws.send(JSON.stringify({ type: 'send', chatId: this.opts.chatId, body: clientMsgId, clientMsgId }));
      } catch {
        this.waiting.resolve(null);
      }
    });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const clientMsgId = `${this.opts.userId.slice(0, 8)}-${++this.counter}`;
      for (let attempts = 1; !this.gaveUp; attempts++) {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          this.ws?.terminate();
          this.ws = await this.connect();
        }
        const acked = await this.attempt(clientMsgId);
        if (acked) {
          this.acked.push({ ...acked, attempts });
          break;
        }
        if (this.ws.readyState !== WebSocket.OPEN) this.urlIndex++;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempts)));
      }
      await new Promise((r) => setTimeout(r, this.opts.intervalMs));
    }
  }
}
