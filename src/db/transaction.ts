import type { ClientBase, Pool, PoolClient } from 'pg';

/**
 * Runs `fn` in a transaction on a connection of the pool: COMMIT when it resolves, ROLLBACK when
 * it (or BEGIN, or COMMIT) throws, and the caller sees the error `fn` threw, never the
 * ROLLBACK's. The connection goes back to the pool, unless the ROLLBACK failed too: then nobody
 * knows whether it is still inside the transaction, so it is destroyed rather than handed out.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let rollbackFailed: Error | undefined;
  try {
    return await inTransaction(client, fn, (err) => (rollbackFailed = err));
  } finally {
    client.release(rollbackFailed);
  }
}

/**
 * The same on a connection the caller holds and releases (the migrator keeps one for its
 * session-level advisory lock). `onRollbackFailed` hears of a failed ROLLBACK: the connection
 * must then be destroyed, not reused.
 */
export async function inTransaction<C extends ClientBase, T>(
  client: C,
  fn: (client: C) => Promise<T>,
  onRollbackFailed: (err: Error) => void,
): Promise<T> {
  // A connection the pool has handed out has no 'error' listener of the pool's: a session that
  // dies between two statements would be an uncaught exception. The same failure reaches the
  // statement under way or the ROLLBACK, so here the event itself is only heard.
  const heard = () => undefined;
  client.on('error', heard);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      onRollbackFailed(rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr)));
    });
    throw err;
  } finally {
    client.off('error', heard);
  }
}
