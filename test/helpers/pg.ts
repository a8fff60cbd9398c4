/** Where the tests find PostgreSQL (the machine's, trust auth) and Redis. */
export const PG_BASE = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const ADMIN_URL = `${PG_BASE}/postgres`;
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const databaseUrl = (name: string) => `${PG_BASE}/${name}`;
