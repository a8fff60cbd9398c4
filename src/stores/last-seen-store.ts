import type { Pool } from 'pg';

/** When a user was last seen online (their last connection closed or stopped heartbeating). */
export interface LastSeen {
  userId: string;
  /** ISO-8601. */
  at: string;
}

/** Same lock order as the read store's batch, for the same reason: batches never deadlock. */
const RECORD_BATCH = `
  WITH wanted AS (
    SELECT id, max(at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS t(id, at) GROUP BY id
  ), locked AS MATERIALIZED (
    SELECT u.id FROM users u JOIN wanted w USING (id) ORDER BY u.id FOR UPDATE OF u
  )
  UPDATE users u SET last_seen_at = GREATEST(u.last_seen_at, w.at)
    FROM wanted w JOIN locked l USING (id)
   WHERE u.id = w.id`;

/** users.last_seen_at, written in batches off the hot path. */
export function createLastSeenStore(pool: Pool) {
  return {
    /** null when there is no such user; `lastSeenAt` is null for a user never seen online. */
    async find(userId: string): Promise<{ lastSeenAt: string | null } | null> {
      const { rows } = await pool.query<{ last_seen_at: string | null }>(
        'SELECT last_seen_at FROM users WHERE id = $1',
        [userId],
      );
      return rows[0] ? { lastSeenAt: rows[0].last_seen_at } : null;
    },

    /** Records a batch in one statement; a time never moves back (GREATEST ignores NULL). */
    async recordBatch(seen: LastSeen[]): Promise<void> {
      if (seen.length === 0) return;
      await pool.query(RECORD_BATCH, [seen.map((s) => s.userId), seen.map((s) => s.at)]);
    },
  };
}

export type LastSeenStore = ReturnType<typeof createLastSeenStore>;
