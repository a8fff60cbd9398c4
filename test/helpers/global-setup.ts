import { createHash } from 'node:crypto';
import pg from 'pg';
import format from 'pg-format';
import { type PrivateCluster, startPrivateCluster } from '../../scripts/faults/private-services.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { ADMIN_URL, databaseUrl } from './pg.js';

type Provide = <K extends 'templateDb' | 'redisCluster'>(key: K, value: string) => void;

/**
 * Once per run: a template database migrated to the current schema, named after a hash of the
 * migrations, so each test file clones a fresh database from it in milliseconds; and a local
 * 3-master Redis Cluster (private redis-servers on free ports, scripts/faults/private-services.ts)
 * that the cluster-marked tests share (createTestEnv with `redis: 'cluster'`), each under key
 * prefixes of its own as on the shared Redis. Tests that kill nodes start clusters of their own.
 */
export default async function setup({ provide }: { provide: Provide }) {
  const cluster = startPrivateCluster({ masters: 3 });
  await templateDatabase(provide);
  const started: PrivateCluster = await cluster;
  provide('redisCluster', started.seedList);
  return () => started.destroy();
}

async function templateDatabase(provide: Provide) {
  const migrations = await loadMigrations();
  const hash = createHash('sha256')
    .update(migrations.map((m) => m.name + m.sql).join('\n'))
    .digest('hex')
    .slice(0, 12);
  const name = `parley_tpl_${hash}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      const building = `${name}_build_${process.pid}`;
      await admin.query(format('DROP DATABASE IF EXISTS %I', building));
      await admin.query(format('CREATE DATABASE %I', building));
      const pool = new pg.Pool({ connectionString: databaseUrl(building) });
      await migrate(pool);
      await pool.end();
      // Renamed only once complete, so a crashed setup never leaves a half-built template.
      await admin
        .query(format('ALTER DATABASE %I RENAME TO %I', building, name))
        .catch(async (err: { code?: string }) => {
          if (err.code !== '42P04') throw err;
          await admin.query(format('DROP DATABASE IF EXISTS %I', building));
        });
    }
  } finally {
    await admin.end();
  }
  provide('templateDb', name);
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
    /** REDIS_CLUSTER_NODES of the run's shared local cluster. */
    redisCluster: string;
  }
}
