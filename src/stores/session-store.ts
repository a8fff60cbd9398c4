import type { Pool } from 'pg';
import type { User } from '../domain/types.js';

/** Sessions are keyed by the SHA-256 of the token; the token itself is never stored. */
export function createSessionStore(pool: Pool) {
  return {
    async create(tokenHash: Buffer, userId: string, ttlSeconds: number): Promise<void> {
      await pool.query(
        `INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))`,
        [tokenHash, userId, ttlSeconds],
      );
    },

    /** The session's user and expiry, or null when unknown or expired. */
    async find(tokenHash: Buffer): Promise<{ user: User; expiresAt: string } | null> {
      const { rows } = await pool.query<{
        id: string;
        username: string;
        display_name: string;
        created_at: string;
        expires_at: string;
      }>(
        `SELECT u.id, u.username, u.display_name, u.created_at, s.expires_at
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.expires_at > now()`,
        [tokenHash],
      );
      const r = rows[0];
      if (!r) return null;
      return {
        user: { id: r.id, username: r.username, displayName: r.display_name, createdAt: r.created_at },
        expiresAt: r.expires_at,
      };
    },

    async revoke(tokenHash: Buffer): Promise<void> {
      await pool.query('DELETE FROM sessions WHERE token_hash = $1', [tokenHash]);
    },

    /** Deletes every session of the user, expired ones included; returns their token hashes. */
    async revokeAllOf(userId: string): Promise<Buffer[]> {
      const { rows } = await pool.query<{ token_hash: Buffer }>(
        'DELETE FROM sessions WHERE user_id = $1 RETURNING token_hash',
        [userId],
      );
      return rows.map((r) => r.token_hash);
    },

    /**
     * Deletes up to `limit` expired sessions; returns how many. Rows another purge has locked are
     * skipped, so purges on several workers share the work instead of waiting on each other.
     */
    async purgeExpired(limit: number): Promise<number> {
      const { rowCount } = await pool.query(
        `DELETE FROM sessions WHERE token_hash IN (
           SELECT token_hash FROM sessions WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
        [limit],
      );
      return rowCount ?? 0;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
