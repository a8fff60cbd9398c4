import type { Pool } from 'pg';
import type { User } from '../domain/types.js';

interface UserRow {
  id: string;
  username: string;
  display_name: string;
  created_at: string;
}

const toUser = (r: UserRow): User => ({
  id: r.id,
  username: r.username,
  displayName: r.display_name,
  createdAt: r.created_at,
});

const COLUMNS = 'id, username, display_name, created_at';
/** password_hash of a user created from a JWT: no password verifies against it. */
const EXTERNAL_PASSWORD = 'external';

export function createUserStore(pool: Pool) {
  return {
    /** Inserts a user; returns null when the username is taken (case-insensitively). */
    async create(u: { id: string; username: string; displayName: string; passwordHash: string }): Promise<User | null> {
      const { rows } = await pool.query<UserRow>(
        `INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
        [u.id, u.username, u.displayName, u.passwordHash],
      );
      return rows[0] ? toUser(rows[0]) : null;
    },

    /**
     * The user of a JWT's `sub` (docs/protocol.md "External identity"), created on first use with
     * `id` = sub: the first of `usernames` not taken is its username. One INSERT, ON CONFLICT DO
     * NOTHING: concurrent first uses of one sub create one user, and all of them get it. Null when
     * the id belongs to a local user (one with a password), whom a JWT may not act as.
     */
    async ensureExternal(id: string, usernames: string[]): Promise<User | null> {
      for (const username of usernames) {
        const { rows } = await pool.query<UserRow>(
          `INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $2, '${EXTERNAL_PASSWORD}')
           ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
          [id, username],
        );
        if (rows[0]) return toUser(rows[0]);
        // Either the id exists (an earlier or concurrent first use) or the username is taken.
        const existing = await pool.query<UserRow & { password_hash: string }>(
          `SELECT ${COLUMNS}, password_hash FROM users WHERE id = $1`,
          [id],
        );
        const row = existing.rows[0];
        if (row) return row.password_hash === EXTERNAL_PASSWORD ? toUser(row) : null;
      }
      throw new Error(`no free username for external user (tried ${usernames.length})`);
    },

    async findCredentials(username: string): Promise<{ user: User; passwordHash: string } | null> {
      const { rows } = await pool.query<UserRow & { password_hash: string }>(
        `SELECT ${COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)`,
        [username],
      );
      const row = rows[0];
      return row ? { user: toUser(row), passwordHash: row.password_hash } : null;
    },

    /** The user of a username (case-insensitively), without credentials. */
    async findByUsername(username: string): Promise<User | null> {
      const { rows } = await pool.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1)`, [
        username,
      ]);
      return rows[0] ? toUser(rows[0]) : null;
    },

    async findById(id: string): Promise<User | null> {
      const { rows } = await pool.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
      return rows[0] ? toUser(rows[0]) : null;
    },

    /** Which of these ids are users. */
    async existing(ids: string[]): Promise<Set<string>> {
      const { rows } = await pool.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::text[])', [ids]);
      return new Set(rows.map((r) => r.id));
    },
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
