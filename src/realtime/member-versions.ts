export interface MemberVersionsOptions {
  /** How long the newest change of a (chat, user) pair is remembered, in ms. */
  ttlMs: number;
  /** The most pairs remembered: past it the least recently changed are forgotten first. */
  maxPairs: number;
  /** A monotonic clock in ms (performance.now by default). */
  now?: () => number;
}

/**
 * The newest membership change applied here per (chat, user), for a short while. Each change is
 * published on two channels (the chat's own, in order with its messages, and the shared
 * membership channel, for processes that hold none of the chat's members), so its copies, and
 * those of a change right after it, may arrive in either order: a copy is applied only when its
 * version (the chat's change counter) is newer than what the pair last had, so a late copy of an
 * addition cannot undo the removal that followed it. The copies of one change are published
 * together; one arriving after its pair was forgotten (past `ttlMs`, or pushed out by `maxPairs`
 * newer ones) is applied again.
 */
export function createMemberVersions(opts: MemberVersionsOptions) {
  const now = opts.now ?? (() => performance.now());
  /** By `chatId SP userId`, least recently changed first. */
  const entries = new Map<string, { v: number; at: number }>();

  function prune(t: number): void {
    for (const [pair, entry] of entries) {
      if (entry.at > t - opts.ttlMs && entries.size <= opts.maxPairs) return;
      entries.delete(pair);
    }
  }

  return {
    /** True when `v` is newer than the pair's last change still remembered (it is remembered then). */
    newer(chatId: string, userId: string, v: number): boolean {
      const t = now();
      prune(t);
      const pair = `${chatId} ${userId}`;
      const last = entries.get(pair);
      if (last && last.v >= v) return false;
      entries.delete(pair);
      entries.set(pair, { v, at: t });
      if (entries.size > opts.maxPairs) prune(t);
      return true;
    },

    /** Pairs remembered now (tests). */
    get pairs(): number {
      prune(now());
      return entries.size;
    },
  };
}

export type MemberVersions = ReturnType<typeof createMemberVersions>;
