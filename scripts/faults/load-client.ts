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

/** A message's state as an ack or PostgreSQL shows it: what the change checks compare. */
export interface MessageState {
  body: string;
  deletedAt: string | null;
  reactions: { emoji: string; count: number; userIds: string[] }[];
  rev: number;
}

/** A change (edit, delete, reaction on or off) of an existing message. */
export type ChangeOp =
  { kind: 'edit'; body: string } | { kind: 'delete' } | { kind: 'react'; emoji: string; on: boolean };

/** What one acked change looked like, as the client saw it: the ack's message is the state at its rev. */
export interface AckedChange {
  clientMsgId: string;
  chatId: string;
  seq: number;
  /** Who made the change (the client's user). */
  actorId: string;
  op: ChangeOp;
  /** The message as the ack carried it. */
  message: MessageState;
  attempts: number;
}

export interface LoadClientOptions {
  userId: string;
  token: string;
  chatId: string;
  /** Api base URLs; the client moves to the next one when its connection fails. */
  urls: string[];
  /** Pause between operations (sends and changes), in ms. */
  intervalMs: number;
  /** How long to wait for an ack before retrying the same clientMsgId. */
  ackTimeoutMs: number;
  /**
   * Share of operations that change an existing message instead of sending a new one (0: sends
   * only, as before). Of the changes, about 40 % edit one of the client's own recent messages,
   * 50 % turn a reaction on or off (on its own recent messages or on others' it received), 10 %
   * delete one of its own.
   */
  changes?: number;
  /** Random numbers in [0, 1) for the choices (default Math.random). */
  random?: () => number;
}

/** Codes that refuse a change for good: retrying the same change cannot succeed. */
const FINAL_CODES = new Set(['conflict', 'not_found', 'forbidden', 'validation_failed', 'payload_too_large']);
const EMOJIS = ['👍', '❤️', '😂'];
/** How many of its own and of others' latest messages a client picks its changes from. */
const RECENT = 20;

/** How one attempt ended: acked; refused (`final`: for good, else worth a retry); or no answer. */
type Outcome =
  | { kind: 'ack'; message: Omit<Acked, 'clientMsgId' | 'attempts'> & MessageState }
  | { kind: 'error'; code: string }
  | { kind: 'silent' };

interface PlannedChange {
  chatId: string;
  seq: number;
  op: ChangeOp;
}

/**
 * A client that behaves like a real one under faults: it does one thing at a time (sends a
 * message, or edits, deletes or reacts to one), and until that is acked it retries it with the
 * same clientMsgId, reconnecting (to another api if need be) whenever its socket fails. It
 * records every ack. A change refused for good (a tombstone, say) is given up; a change left
 * without an answer for good (refused after a silent attempt, or still pending at the stop) makes
 * its message "unsettled": whether it took effect is unknown, so the checker leaves it out.
 */
export class LoadClient {
  readonly acked: Acked[] = [];
  readonly changes: AckedChange[] = [];
  /** `chatId/seq` of messages this client's unanswered changes may or may not have changed. */
  readonly unsettled = new Set<string>();
  /** Changes refused for good, by code. */
  readonly refused: Record<string, number> = {};
  private ws: WebSocket | undefined;
  private urlIndex: number;
  private running = false;
  private counter = 0;
  private waiting: { clientMsgId: string; change: boolean; resolve: (o: Outcome) => void } | undefined;
  private done: Promise<void> | undefined;
  private gaveUp = false;
  private readonly random: () => number;
  /** The client's own recent messages (seq → original body), and others' it received. */
  private readonly own = new Map<number, string>();
  private readonly others = new Set<number>();
  /** Whether the client's reaction `seq|emoji` is on, as its latest ack of that message said. */
  private readonly reacted = new Map<string, boolean>();

  constructor(
    private readonly opts: LoadClientOptions,
    startAt: number,
  ) {
    this.urlIndex = startAt % opts.urls.length;
    this.random = opts.random ?? Math.random;
  }

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  /** Stops after the operation under way is acked, or after `graceMs` (then it stays unacked). */
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
        ws.on('close', () => this.waiting?.resolve({ kind: 'silent' }));
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
      code?: string;
      message?: Omit<Acked, 'clientMsgId' | 'attempts'> & MessageState;
    };
    const m = frame.message;
    // Others' messages of the chat, to react to; tombstones are no longer worth a change.
    if (m && m.chatId === this.opts.chatId) {
      if (frame.type === 'message' && m.senderId !== this.opts.userId) {
        this.others.add(m.seq);
        if (this.others.size > RECENT) this.others.delete(this.others.values().next().value as number);
      } else if (frame.type === 'message.updated' && m.deletedAt) {
        this.others.delete(m.seq);
        this.own.delete(m.seq);
      }
    }
    const waiting = this.waiting;
    if (!waiting) return;
    // An error about a change may come without its clientMsgId: the client has nothing else under way.
    const mine =
      frame.clientMsgId === waiting.clientMsgId ||
      (waiting.change && frame.type === 'error' && frame.clientMsgId === undefined);
    if (!mine) return;
    if (frame.type === 'ack' && m) waiting.resolve({ kind: 'ack', message: m });
    else if (frame.type === 'error') waiting.resolve({ kind: 'error', code: frame.code ?? 'unknown' });
  }

  private attempt(clientMsgId: string, frame: object, change: boolean): Promise<Outcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'silent' }), this.opts.ackTimeoutMs);
      const waiting = {
        clientMsgId,
        change,
        resolve: (o: Outcome) => {
          clearTimeout(timer);
          if (this.waiting === waiting) this.waiting = undefined;
          resolve(o);
        },
      };
      this.waiting = waiting;
      const ws = this.ws;
      // Not connected: the attempt failed, as a dead socket's does (and nothing reached the server).
      if (!ws) return waiting.resolve({ kind: 'error', code: 'not_connected' });
      try {
        ws.send(JSON.stringify({ ...frame, clientMsgId }));
      } catch {
        waiting.resolve({ kind: 'error', code: 'not_connected' });
      }
    });
  }

  /** The next change to make, or null for a send (by the `changes` share, when there is a message to change). */
  private plan(): PlannedChange | null {
    const share = this.opts.changes ?? 0;
    if (share <= 0 || this.random() >= share) return null;
    const chatId = this.opts.chatId;
    const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(this.random() * xs.length)];
    const own = [...this.own.keys()];
    const r = this.random();
    if (r < 0.5) {
      const mineToo = this.random() < 0.5 || this.others.size === 0;
      const seq = pick(mineToo ? own : [...this.others]);
      if (seq === undefined) return null;
      const emoji = pick(EMOJIS) ?? '👍';
      return { chatId, seq, op: { kind: 'react', emoji, on: !this.reacted.get(`${seq}|${emoji}`) } };
    }
    const seq = pick(own);
    if (seq === undefined) return null;
    if (r < 0.9) return { chatId, seq, op: { kind: 'edit', body: `${this.own.get(seq)}~e${this.counter + 1}` } };
    return { chatId, seq, op: { kind: 'delete' } };
  }

  private changeFrame(c: PlannedChange): object {
    const at = { chatId: c.chatId, seq: c.seq };
    switch (c.op.kind) {
      case 'edit':
        return { type: 'edit', ...at, body: c.op.body };
      case 'delete':
        return { type: 'delete', ...at };
      case 'react':
        return { type: 'react', ...at, emoji: c.op.emoji, on: c.op.on };
    }
  }

  /** The change's outcome known: what the client remembers of the message. */
  private settle(c: PlannedChange, result: { acked: MessageState } | { refused: string } | { unknown: true }): void {
    const key = `${c.chatId}/${c.seq}`;
    if (!('acked' in result)) {
      if ('refused' in result) this.refused[result.refused] = (this.refused[result.refused] ?? 0) + 1;
      else this.unsettled.add(key);
      this.own.delete(c.seq);
      this.others.delete(c.seq);
      return;
    }
    const m = result.acked;
    if (m.deletedAt) {
      this.own.delete(c.seq);
      this.others.delete(c.seq);
    }
    for (const emoji of EMOJIS) {
      const on = m.reactions.some((x) => x.emoji === emoji && x.userIds.includes(this.opts.userId));
      this.reacted.set(`${c.seq}|${emoji}`, on);
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const change = this.plan();
      const clientMsgId = `${this.opts.userId.slice(0, 8)}-${change ? 'c' : ''}${++this.counter}`;
      const frame = change ? this.changeFrame(change) : { type: 'send', chatId: this.opts.chatId, body: clientMsgId };
      // A silent attempt (no answer, or the socket closed) may have taken effect; an error did not.
      let silent = false;
      let outcome: 'acked' | 'refused' | 'none' = 'none';
      for (let attempts = 1; !this.gaveUp; attempts++) {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          this.ws?.terminate();
          this.ws = await this.connect();
        }
        const o = await this.attempt(clientMsgId, frame, change !== null);
        if (o.kind === 'ack') {
          outcome = 'acked';
          const m = o.message;
          if (!change) {
            this.acked.push({ clientMsgId, chatId: m.chatId, senderId: m.senderId, seq: m.seq, id: m.id, attempts });
            this.own.set(m.seq, clientMsgId);
            if (this.own.size > RECENT) this.own.delete(this.own.keys().next().value as number);
          } else {
            const state = { body: m.body, deletedAt: m.deletedAt ?? null, reactions: m.reactions ?? [], rev: m.rev };
            this.changes.push({
              clientMsgId,
              chatId: change.chatId,
              seq: change.seq,
              actorId: this.opts.userId,
              op: change.op,
              message: state,
              attempts,
            });
            this.settle(change, { acked: state });
          }
          break;
        }
        if (o.kind === 'silent') silent = true;
        if (change && o.kind === 'error' && FINAL_CODES.has(o.code)) {
          outcome = 'refused';
          this.settle(change, { refused: o.code });
          // Refused now, but an earlier attempt that got no answer may have been made.
          if (silent) this.settle(change, { unknown: true });
          break;
        }
        if (this.ws.readyState !== WebSocket.OPEN) this.urlIndex++;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempts)));
      }
      // Given up at the stop: a change sent but never answered may or may not have been made.
      if (change && outcome === 'none') this.settle(change, { unknown: true });
      await new Promise((r) => setTimeout(r, this.opts.intervalMs));
    }
  }
}
