import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction, withTransaction } from '../../src/db/transaction.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

let env: TestEnv;
const count = async (): Promise<number> =>
  (await env.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_test')).rows[0]?.n ?? -1;

beforeAll(async () => {
  env = await createTestEnv();
  await env.pool.query('CREATE TABLE tx_test (id int PRIMARY KEY)');
});
afterAll(async () => {
  await env?.cleanup();
});

describe('withTransaction', () => {
  it('commits what fn wrote and resolves with its value', async () => {
    const value = await withTransaction(env.pool, async (client) => {
      await client.query('INSERT INTO tx_test VALUES (1), (2)');
      return 'done';
    });
    expect(value).toBe('done');
    expect(await count()).toBe(2);
    expect(env.pool.totalCount).toBe(env.pool.idleCount); // every connection back in the pool
  });

  it('rolls back when fn throws, throws what fn threw, and returns the connection', async () => {
    const before = await count();
    const thrown = new Error('changed my mind');
    await expect(
      withTransaction(env.pool, async (client) => {
        await client.query('INSERT INTO tx_test VALUES (10)');
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    // A failed statement (a duplicate key): rolled back, the statement's own error thrown.
    await expect(
      withTransaction(env.pool, (client) => client.query('INSERT INTO tx_test VALUES (11), (1)')),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await count()).toBe(before);
    expect(env.pool.totalCount).toBeGreaterThan(0);
    expect(env.pool.totalCount).toBe(env.pool.idleCount);
  });

  it('throws fn’s error, not the ROLLBACK’s, when the session died under it', async () => {
    await expect(
      withTransaction(env.pool, (client) => client.query('SELECT pg_terminate_backend(pg_backend_pid())')),
    ).rejects.toMatchObject({ code: '57P01' });
    expect(await count()).toBeGreaterThan(0); // the pool serves again, on a new connection
  });
});

describe('a failed ROLLBACK', () => {
  /** A connection whose ROLLBACK fails although the connection itself still answers. */
  function fakePool(): { pool: pg.Pool; statements: string[]; released: unknown[] } {
    const statements: string[] = [];
    const released: unknown[] = [];
    const client = {
      on: () => client,
      off: () => client,
      query: async (sql: string) => {
        statements.push(sql);
        if (sql === 'ROLLBACK') throw new Error('rollback refused');
        if (sql === 'boom') throw new Error('boom');
        return { rows: [] };
      },
      release: (err?: unknown) => void released.push(err),
    };
    return { pool: { connect: async () => client } as unknown as pg.Pool, statements, released };
  }

  it('destroys the connection (release with the error) and still throws fn’s error', async () => {
    const { pool, statements, released } = fakePool();
    await expect(withTransaction(pool, (client) => client.query('boom'))).rejects.toThrow(/^boom$/);
    expect(statements).toEqual(['BEGIN', 'boom', 'ROLLBACK']);
    expect(released).toHaveLength(1);
    expect(released[0]).toBeInstanceOf(Error);
    expect(released[0]).toMatchObject({ message: 'rollback refused' });
  });

  it('returns the connection as usual when nothing failed, and on a held connection reports it', async () => {
    const ok = fakePool();
    await withTransaction(ok.pool, async () => undefined);
    expect(ok.statements).toEqual(['BEGIN', 'COMMIT']);
    expect(ok.released).toEqual([undefined]);

    const held = fakePool();
    const client = await held.pool.connect();
    const failures: Error[] = [];
    await expect(
      inTransaction(
        client,
        (c) => c.query('boom'),
        (err) => failures.push(err),
      ),
    ).rejects.toThrow(/^boom$/);
    expect(failures.map((e) => e.message)).toEqual(['rollback refused']);
    expect(held.released).toEqual([]); // the holder releases it
  });
});
