import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg, { type Pool } from 'pg';
import format from 'pg-format';
import { inTransaction } from './transaction.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Any constant: it serialises concurrent migrators (several processes starting at once). */
const ADVISORY_LOCK_KEY = 7_201_995;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** What `migrate` applies. */
export interface MigrateOptions {
  /**
   * Stop after this version (inclusive): the schema as it was then, for tests of a later
   * migration on a database that already holds data. Unset: every migration.
   */
  upTo?: number;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  // Applied migrations are remembered by number: a second file with the same one would be skipped.
  const numbers = files.map((f) => Number.parseInt(f, 10));
  const twice = files.filter((name, i) => numbers.indexOf(Number.parseInt(name, 10)) !== i);
  if (twice.length > 0) throw new Error(`migrations share a number: ${twice.join(', ')}`);
  return Promise.all(
    files.map(async (name) => ({
      version: Number.parseInt(name, 10),
      name,
      sql: await readFile(dir + name, 'utf8'),
    })),
  );
}

/**
 * Brings the schema up to date (or up to `options.upTo`). Safe to re-run and to run from several
 * processes at once: an advisory lock serialises them, and each migration commits together with its
 * bookkeeping row. Returns the names of the migrations it applied.
 */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<string[]> {
  const { upTo } = options;
  const migrations = (await loadMigrations()).filter((m) => upTo === undefined || m.version <= upTo);
  // One connection throughout: the advisory lock belongs to its session.
  const client = await pool.connect();
  const applied: string[] = [];
  let rollbackFailed: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await inTransaction(
        client,
        async (tx) => {
          await tx.query(m.sql);
          await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        },
        (err) => (rollbackFailed = err),
      );
      applied.push(m.name);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]).catch(() => undefined);
    // Destroyed when a ROLLBACK failed (its session, and the lock with it, ends).
    client.release(rollbackFailed);
  }
  return applied;
}

/**
 * Creates the database named in the URL when it does not exist yet (a first `npm start`),
 * connecting to the server's `postgres` database to do it. The name is an identifier, so it is
 * quoted with pg-format rather than bound.
 */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) return;
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(format('CREATE DATABASE %I', name)).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created by a concurrent starter
      });
    }
  } finally {
    await client.end();
  }
}
