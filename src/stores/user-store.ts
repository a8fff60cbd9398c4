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
      const { rows } = await pool.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::uuid[])', [ids]);
      return new Set(rows.map((r) => r.id));
    },
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
