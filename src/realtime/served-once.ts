export interface ServedOnceOptions {
  /** How long a change is remembered after its first copy arrived, in ms. */
  ttlMs: number;
  /**
   * The most (change, user) pairs remembered across all changes: past it the oldest changes are
   * forgotten first (the newest one never, so that its copies still arriving are told apart).
   */
  maxPairs: number;
  /** A monotonic clock in ms (performance.now by default). */
  now?: () => number;
}

interface Entry {
  readonly at: number;
  readonly users: Set<string>;
}

/**
 * Which users here a change was already written to, for a short while: a change published on
 * several channels (a presence transition, on each of the user's chats) arrives once per channel
 * this process is subscribed to, and each user gets it from the first copy that reaches one of
 * their chats only. The copies of one change are published together, so they arrive within
 * moments of each other; a copy arriving after its change was forgotten (past `ttlMs`, or pushed
 * out by `maxPairs` newer pairs) is written again, never lost.
 *
 * Memory: at most `maxPairs` pairs plus those of the newest change, and no change older than `ttlMs`
 * (each pair a reference to a user id string the registry holds anyway).
 */
export function createServedOnce(opts: ServedOnceOptions) {
  const now = opts.now ?? (() => performance.now());
  /** In arrival order: the oldest first. */
  const entries = new Map<string, Entry>();
  let pairs = 0;

  function forget(changeId: string, entry: Entry): void {
    entries.delete(changeId);
    pairs -= entry.users.size;
  }

  function prune(t: number): void {
    for (const [changeId, entry] of entries) {
      const expired = entry.at <= t - opts.ttlMs;
      if (!expired && (pairs <= opts.maxPairs || entries.size === 1)) return;
      forget(changeId, entry);
    }
  }

  return {
    /** True the first time the user is named for the change (it is remembered then), false after. */
    first(changeId: string, userId: string): boolean {
      const t = now();
      let entry = entries.get(changeId);
      if (entry && entry.at <= t - opts.ttlMs) {
        forget(changeId, entry);
        entry = undefined;
      }
      if (!entry) {
        prune(t);
        entries.set(changeId, (entry = { at: t, users: new Set() }));
      }
      if (entry.users.has(userId)) return false;
      entry.users.add(userId);
      pairs++;
      if (pairs > opts.maxPairs) prune(t);
      return true;
    },

    /** Changes remembered now (tests). */
    get changes(): number {
      prune(now());
      return entries.size;
    },

    /** (change, user) pairs remembered now (tests). */
    get pairs(): number {
      prune(now());
      return pairs;
    },
  };
}

export type ServedOnce = ReturnType<typeof createServedOnce>;
