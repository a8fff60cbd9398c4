import type { Connection } from '../domain/connection.js';

/** setTimeout's longest delay (~24.8 days); longer sessions re-arm their timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Which session (token hash) opened each socket of this process, so that a socket ends with its
 * session: when the token expires (a timer) or is revoked anywhere (`end`). Authentication happens
 * once, at the upgrade; without this a socket would outlive its token.
 */
export function createSessionTracker(close: (conn: Connection) => void) {
  const byToken = new Map<string, Set<Connection>>();
  const tokenOf = new Map<Connection, string>();
  const timers = new Map<Connection, NodeJS.Timeout>();

  function arm(conn: Connection, expiresAt: number): void {
    const ms = expiresAt - Date.now();
    if (ms <= 0) return close(conn);
    const timer = setTimeout(() => arm(conn, expiresAt), Math.min(ms, MAX_TIMER_MS));
    timer.unref();
    timers.set(conn, timer);
  }

  return {
    track(conn: Connection, session: { tokenHash: string; expiresAt: number }): void {
      tokenOf.set(conn, session.tokenHash);
      let set = byToken.get(session.tokenHash);
      if (!set) byToken.set(session.tokenHash, (set = new Set()));
      set.add(conn);
      arm(conn, session.expiresAt);
    },

    untrack(conn: Connection): void {
      clearTimeout(timers.get(conn));
      timers.delete(conn);
      const hash = tokenOf.get(conn);
      tokenOf.delete(conn);
      if (hash === undefined) return;
      const set = byToken.get(hash);
      set?.delete(conn);
      if (set?.size === 0) byToken.delete(hash);
    },

    /** Closes every socket of this process opened with the session; returns how many. */
    end(tokenHash: string): number {
      const conns = [...(byToken.get(tokenHash) ?? [])];
      for (const conn of conns) close(conn);
      return conns.length;
    },
  };
}

export type SessionTracker = ReturnType<typeof createSessionTracker>;
