import type { Message } from './types.js';

/** What one incoming message did to a chat's timeline. */
export interface ApplyResult {
  /** New messages now in order (each once, ascending seq): the app shows these. */
  delivered: Message[];
  /** Messages already delivered whose newer state (higher rev) replaced the old. */
  updated: Message[];
  /** The message left a hole below it (seqs not received yet). */
  gap: boolean;
}

/**
 * One chat's ordering and dedupe buffer: messages reach the app once, in seq order. A message
 * above the next expected seq waits (a gap) until the missing ones arrive or a sync says they do
 * not exist (`skipHoles`); one at or below it is a duplicate, or a newer state of a known message
 * when its rev is higher (edits, deletes, reactions).
 */
export class ChatTimeline {
  /** Highest seq delivered with nothing missing below it (0: nothing yet). */
  private deliveredSeq: number;
  /** Highest rev up to which every change is known (advanced by contiguous revs and by `synced`). */
  private knownRev: number;
  private readonly pending = new Map<number, Message>();
  private readonly bySeq = new Map<number, Message>();

  constructor(
    readonly chatId: string,
    from: { seq?: number; rev?: number } = {},
  ) {
    this.deliveredSeq = from.seq ?? 0;
    this.knownRev = from.rev ?? 0;
  }

  get lastSeq(): number {
    return this.deliveredSeq;
  }
  get rev(): number {
    return this.knownRev;
  }
  /** The lowest seq waiting above a hole, or null when nothing waits. */
  get firstPending(): number | null {
    return this.pending.size ? Math.min(...this.pending.keys()) : null;
  }
  get hasGap(): boolean {
    return this.pending.size > 0;
  }

  /** Every delivered (or history-loaded) message, ascending seq. */
  messages(): Message[] {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
  get(seq: number): Message | undefined {
    return this.bySeq.get(seq) ?? this.pending.get(seq);
  }

  /** A `message` or `message.updated` frame's message (or an ack's). */
  apply(message: Message): ApplyResult {
    const result: ApplyResult = { delivered: [], updated: [], gap: false };
    this.noteRev(message.rev);
    if (message.seq <= this.deliveredSeq) {
      const known = this.bySeq.get(message.seq);
      if (known && message.rev > known.rev) {
        this.bySeq.set(message.seq, message);
        result.updated.push(message);
      } else if (!known && message.seq > 0) {
        // Older than where this timeline started: history, not news.
        this.bySeq.set(message.seq, message);
      }
      return result;
    }
    const waiting = this.pending.get(message.seq);
    if (!waiting || message.rev > waiting.rev) this.pending.set(message.seq, message);
    this.drain(result.delivered);
    result.gap = this.pending.size > 0;
    return result;
  }

  /** Older messages from the history route: stored, never delivered as news. */
  addHistory(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.seq > this.deliveredSeq) continue;
      const known = this.bySeq.get(m.seq);
      if (!known || m.rev > known.rev) this.bySeq.set(m.seq, m);
    }
  }

  /** A `synced` frame named this chat at `rev`: every change up to it has been sent. */
  synced(rev: number): void {
    if (rev > this.knownRev) this.knownRev = rev;
  }

  /**
   * After a sync answered and a hole is still there, the seqs in it do not exist (skipped across
   * a Redis outage): delivers what waited above it, in order.
   */
  skipHoles(): Message[] {
    const delivered: Message[] = [];
    while (this.pending.size) {
      this.deliveredSeq = Math.min(...this.pending.keys()) - 1;
      this.drain(delivered);
    }
    return delivered;
  }

  private drain(into: Message[]): void {
    for (;;) {
      const next = this.pending.get(this.deliveredSeq + 1);
      if (!next) return;
      this.pending.delete(next.seq);
      this.deliveredSeq = next.seq;
      this.bySeq.set(next.seq, next);
      into.push(next);
    }
  }

  private noteRev(rev: number): void {
    if (rev === this.knownRev + 1) this.knownRev = rev;
  }
}
