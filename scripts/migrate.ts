/** `npm run migrate`: brings the PostgreSQL schema up to date (safe to re-run). */
import { loadConfig } from '../src/config.js';
import { ensureDatabase, migrate } from '../src/db/migrate.js';
import { createPgPool } from '../src/infra/clients.js';

const config = loadConfig();
await ensureDatabase(config.DATABASE_URL);
const pool = createPgPool(config, 'parley-migrate');
try {
  const applied = await migrate(pool);
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'schema is up to date');
} finally {
  await pool.end();
}
