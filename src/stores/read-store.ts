import type { Pool } from 'pg';

/** A member's read position: they have read the chat up to and including `seq`. */
export interface ReadPosition {
  chatId: string;
  userId: string;
  seq: number;
}

/**
 * Locks the rows in one order (chat, user) before moving them, so that two batches touching the
 * same members (two workers, or a read batch beside a persist batch) queue up instead of
 * deadlocking; GREATEST-like `seq > last_read_seq` keeps a position from ever moving back, so a
 * retried or reordered batch is harmless.
 */
const ADVANCE_BATCH = `
  WITH wanted AS (
    SELECT chat_id, user_id, max(seq) AS seq
      FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS t(chat_id, user_id, seq)
     GROUP BY chat_id, user_id
  ), locked AS MATERIALIZED (
    SELECT m.chat_id, m.user_id
      FROM chat_members m JOIN wanted w USING (chat_id, user_id)
     ORDER BY m.chat_id, m.user_id
       FOR UPDATE OF m
  )
  UPDATE chat_members m SET last_read_seq = w.seq
    FROM wanted w JOIN locked l USING (chat_id, user_id)
   WHERE m.chat_id = w.chat_id AND m.user_id = w.user_id AND w.seq > m.last_read_seq`;

/** chat_members.last_read_seq: the durable copy of read positions (Redis holds the live one). */
export function createReadStore(pool: Pool) {
  return {
    /** The member's stored position, or null when they are not a member. */
    async position(chatId: string, userId: string): Promise<number | null> {
      const { rows } = await pool.query<{ last_read_seq: number }>(
        'SELECT last_read_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2',
        [chatId, userId],
      );
      return rows[0]?.last_read_seq ?? null;
    },

    /** Moves every position forward in one statement; returns how many rows moved. */
    async advanceBatch(positions: ReadPosition[]): Promise<number> {
      if (positions.length === 0) return 0;
      const { rowCount } = await pool.query(ADVANCE_BATCH, [
        positions.map((p) => p.chatId),
        positions.map((p) => p.userId),
        positions.map((p) => p.seq),
      ]);
      return rowCount ?? 0;
    },
  };
}

export type ReadStore = ReturnType<typeof createReadStore>;
