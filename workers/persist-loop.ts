/** What one batch did with each of its chats. */
export interface BatchOutcome {
  /** Nothing was pending and the chat was one to let go: its ticket was released as the batch read it. */
  idle: string[];
  /** Nothing was pending, but the chat is kept a while (its ticket too): it may get messages soon. */
  quiet?: string[];
  /** Written: the ticket was renewed, and the chat is read again next batch. */
  more: string[];
  /** Written, and the chat filled its share of the batch: a backlog, read again at once. */
  backlog: string[];
}

export interface PersistLoopOptions {
  /** Most chats one batch takes (PERSIST_BATCH_SIZE). */
  maxChats: number;
  /** How long a batch collects chats before it is written, when none has a backlog (ms). */
  waitMs: number;
  /** How long a busy chat stays here before it is handed on through the queue (ms). */
  holdMs: number;
  /**
   * How long a chat is kept after a batch first found nothing pending for it (ms): a chat that
   * sends in bursts stays under one job instead of costing one per burst.
   */
  idleMs: number;
  /**
   * Writes one batch of chats (read pending, INSERT, mark persisted); throwing fails them all.
   * `letGo`: the chats idle long enough that a read finding nothing pending releases their ticket.
   */
  write: (chatIds: string[], letGo: ReadonlySet<string>) => Promise<BatchOutcome>;
  /** Adds the next persist job of each chat (their tickets stay held meanwhile). */
  handOn: (chatIds: string[]) => Promise<void>;
  /** Called when handing on failed (the chats stay here and are tried again). */
  onHandOnError?: (err: unknown, chatIds: string[]) => void;
  now?: () => number;
}

interface Held {
  since: number;
  /** When a batch first found nothing pending for it, in a row (null: it had messages). */
  idleSince: number | null;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

/**
 * The persist worker's batches. A persist job holds its chat here (its processor's promise) while
 * the chat stays busy: a batch that wrote messages keeps it for the next batch, its ticket renewed
 * under the same live job, so that the chat's next messages ride on that job; once batches have
 * found nothing pending for it for `idleMs`, the next such read lets it go (its job completes; the
 * read released its ticket in the same step). A busy chat costs one BullMQ job per `holdMs`, not
 * one per batch or per burst. Past `holdMs` the chat is
 * handed on: its next job is added (to the back of the queue, so that more chats than a worker
 * holds at once all get their turn) before this one completes, so the ticket is never without a
 * job. A worker that dies holding chats leaves their jobs active: their locks run out and another
 * worker redoes them.
 */
export class PersistLoop {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closing = false;
  private readonly now: () => number;

  constructor(private readonly o: PersistLoopOptions) {
    this.now = o.now ?? Date.now;
  }

  /** A persist job's processor: settles when the chat is let go or handed on; rejects when its batch failed. */
  hold(chatId: string): Promise<void> {
    // A job taken while closing goes back to the queue (it retries after its backoff; its ticket
    // stays held by it meanwhile).
    if (this.closing) return Promise.reject(new Error('the persist worker is closing'));
    return new Promise((resolve, reject) => {
      let h = this.held.get(chatId);
      if (!h) this.held.set(chatId, (h = { since: this.now(), idleSince: null, waiters: [] }));
      h.waiters.push({ resolve, reject });
      this.schedule(this.o.waitMs);
    });
  }

  /** Chats held here now. */
  get size(): number {
    return this.held.size;
  }

  /** Finishes the batch under way, then hands on every chat still held (a shutdown). */
  async drain(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const rest = [...this.held.keys()];
    if (rest.length === 0) return;
    try {
      await this.o.handOn(rest);
      for (const chatId of rest) this.release(chatId);
    } catch (err) {
      // Their jobs fail and retry; their tickets are still held, so no chat is left without one.
      for (const chatId of rest) this.release(chatId, undefined, err);
    }
  }

  private schedule(ms: number): void {
    if (this.closing || this.running || this.timer || this.held.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.run().then(
        (backlog) => {
          this.running = undefined;
          this.schedule(backlog ? 0 : this.o.waitMs);
        },
        () => {
          this.running = undefined;
          this.schedule(this.o.waitMs);
        },
      );
    }, ms);
  }

  /** One batch; resolves true when a chat has a backlog (the next batch goes at once). */
  private async run(): Promise<boolean> {
    const batch = [...this.held].slice(0, this.o.maxChats);
    const chatIds = batch.map(([chatId]) => chatId);
    // The jobs each chat had when the batch began: only they settle with it. A job that arrives
    // while the batch runs was added by an append that claimed the ticket after this batch's read
    // released it, so its message is still to be written: that job keeps the chat held.
    const jobs = new Map(batch.map(([chatId, h]) => [chatId, h.waiters.length]));
    const jobsOf = (chatId: string) => jobs.get(chatId) ?? 0;
    const started = this.now();
    const letGo = new Set(
      batch.filter(([, h]) => h.idleSince !== null && started - h.idleSince >= this.o.idleMs).map(([chatId]) => chatId),
    );
    let outcome: BatchOutcome;
    try {
      outcome = await this.o.write(chatIds, letGo);
    } catch (err) {
      for (const chatId of chatIds) this.release(chatId, jobsOf(chatId), err);
      return false;
    }
    for (const chatId of outcome.idle) this.release(chatId, jobsOf(chatId));
    for (const chatId of outcome.quiet ?? []) {
      const h = this.held.get(chatId);
      if (h) h.idleSince ??= started;
    }
    for (const chatId of [...outcome.more, ...outcome.backlog]) {
      const h = this.held.get(chatId);
      if (h) h.idleSince = null;
    }
    const at = this.now();
    const due = [...outcome.more, ...outcome.backlog].filter(
      (chatId) => at - (this.held.get(chatId)?.since ?? at) >= this.o.holdMs,
    );
    if (due.length > 0) {
      try {
        await this.o.handOn(due);
        for (const chatId of due) this.release(chatId, jobsOf(chatId));
      } catch (err) {
        this.o.onHandOnError?.(err, due);
      }
    }
    return outcome.backlog.some((chatId) => this.held.has(chatId));
  }

  /** Settles the chat's first `count` jobs (all when omitted); the chat stays held for any later ones. */
  private release(chatId: string, count?: number, err?: unknown): void {
    const h = this.held.get(chatId);
    if (!h) return;
    const settled = count === undefined ? h.waiters.splice(0) : h.waiters.splice(0, count);
    if (h.waiters.length === 0) this.held.delete(chatId);
    else {
      h.since = this.now();
      h.idleSince = null;
    }
    for (const w of settled) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }
}
