/** One change waiting for its ack: a send, edit, delete or reaction. */
export type OutboxItem =
  | { kind: 'send'; clientMsgId: string; chatId: string; body: string; replyTo?: number; createdAt: string }
  | { kind: 'edit'; clientMsgId: string; chatId: string; seq: number; body: string; createdAt: string }
  | { kind: 'delete'; clientMsgId: string; chatId: string; seq: number; createdAt: string }
  | { kind: 'react'; clientMsgId: string; chatId: string; seq: number; emoji: string; on: boolean; createdAt: string };

/**
 * Where unsent items outlive the page (or process): `load` once at start, `save` after every change
 * with the whole list. Either may be async.
 */
export interface OutboxStorage {
  load(): readonly OutboxItem[] | null | undefined | Promise<readonly OutboxItem[] | null | undefined>;
  save(items: readonly OutboxItem[]): void | Promise<void>;
}

/** An OutboxStorage on a Web Storage (localStorage in a browser) under one key. */
export function webStorageOutbox(
  storage: { getItem(key: string): string | null; setItem(key: string, value: string): void },
  key = 'parley.outbox',
): OutboxStorage {
  return {
    load: () => {
      const raw = storage.getItem(key);
      if (!raw) return null;
      try {
        const items: unknown = JSON.parse(raw);
        return Array.isArray(items) ? (items as OutboxItem[]) : null;
      } catch {
        return null;
      }
    },
    save: (items) => storage.setItem(key, JSON.stringify(items)),
  };
}

/**
 * The queue of changes until each is acked: per chat in the order made, one in flight per chat
 * (so a retry can never overtake a later change), each under its clientMsgId, which makes a retry
 * idempotent on the server: sent any number of times, applied once.
 */
export class Outbox {
  private items: OutboxItem[] = [];
  /** clientMsgId -> when it was last sent (ms). */
  private readonly inFlight = new Map<string, number>();

  /** False until `restore` read the storage: saving before that would overwrite what it holds. */
  private restored: boolean;

  constructor(private readonly storage?: OutboxStorage) {
    this.restored = !storage;
  }

  /** Adds the stored items (before any new ones). */
  async restore(): Promise<void> {
    try {
      const stored = (await this.storage?.load()) ?? [];
      const have = new Set(this.items.map((i) => i.clientMsgId));
      this.items = [...stored.filter((i) => !have.has(i.clientMsgId)), ...this.items];
    } finally {
      this.restored = true;
      this.persist();
    }
  }

  add(item: OutboxItem): void {
    this.items.push(item);
    this.persist();
  }

  all(): readonly OutboxItem[] {
    return this.items;
  }
  get size(): number {
    return this.items.length;
  }
  has(clientMsgId: string): boolean {
    return this.items.some((i) => i.clientMsgId === clientMsgId);
  }
  find(clientMsgId: string): OutboxItem | undefined {
    return this.items.find((i) => i.clientMsgId === clientMsgId);
  }

  /**
   * The items to (re)send now: each chat's first item, when it is not in flight or was sent
   * longer than `retryAfterMs` ago. Marks them in flight at `now`.
   */
  due(now: number, retryAfterMs: number): OutboxItem[] {
    const seen = new Set<string>();
    const out: OutboxItem[] = [];
    for (const item of this.items) {
      if (seen.has(item.chatId)) continue;
      seen.add(item.chatId);
      const sentAt = this.inFlight.get(item.clientMsgId);
      if (sentAt === undefined || now - sentAt >= retryAfterMs) {
        this.inFlight.set(item.clientMsgId, now);
        out.push(item);
      }
    }
    return out;
  }

  /** Sent again later no matter when it was last sent (after a `rate_limited`, at `at`). */
  deferUntil(clientMsgId: string, at: number, retryAfterMs: number): void {
    if (this.inFlight.has(clientMsgId)) this.inFlight.set(clientMsgId, at - retryAfterMs);
  }

  /** The connection went away: nothing is in flight any more. */
  resetInFlight(): void {
    this.inFlight.clear();
  }

  /** Acked (or refused for good): removed; returns it, or undefined when it was not there. */
  remove(clientMsgId: string): OutboxItem | undefined {
    const index = this.items.findIndex((i) => i.clientMsgId === clientMsgId);
    if (index < 0) return undefined;
    const [item] = this.items.splice(index, 1);
    this.inFlight.delete(clientMsgId);
    this.persist();
    return item;
  }

  private persist(): void {
    if (!this.storage || !this.restored) return;
    try {
      void Promise.resolve(this.storage.save(this.items)).catch(() => undefined);
    } catch {
      // A full or unavailable storage costs the reload guarantee, not the send.
    }
  }
}
