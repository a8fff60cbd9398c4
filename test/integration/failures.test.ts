import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis, type RedisOptions, ReplyError } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/embedded/serving.js';
import { type PrivateRedis, startPrivateRedis } from '../../scripts/faults/private-services.js';
import { classifyFailure } from '../../src/domain/failures.js';
import { ADMIN_URL, REDIS_URL } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The failure classification against what the drivers really raise: every error here is
 * provoked (a closed port, a server that never answers or hangs up, a backend or connection
 * killed, a Redis made full or a replica), so that a driver changing its errors fails this file
 * rather than turning an outage into a 500 or a retried send into a duplicate.
 */
async function rejection(work: Promise<unknown>): Promise<Error> {
  const err: unknown = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error(`expected a rejection, got ${String(err)}`);
  return err;
}

/** A TCP server that runs `onSocket` for each connection, on a free port of 127.0.0.1. */
async function tcpServer(onSocket: (socket: Socket) => void): Promise<Server & { port: number }> {
  const server = createServer(onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(server, { port: (server.address() as { port: number }).port });
}

let closedPort: number;
/** Accepts connections and never answers. */
let silent: Server & { port: number };
/** Accepts connections and closes them at once. */
let hangsUp: Server & { port: number };
const clients: { disconnect(): void }[] = [];

beforeAll(async () => {
  closedPort = await freePort();
  silent = await tcpServer((socket) => socket.on('data', () => undefined));
  hangsUp = await tcpServer((socket) => socket.destroy());
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const server of [silent, hangsUp]) server?.close();
});

function redisClient({ url, ...options }: RedisOptions & { url?: string }): Redis {
  const merged: RedisOptions = { retryStrategy: () => 50, ...options };
  const client = url ? new Redis(url, merged) : new Redis(merged);
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

describe('ioredis failures', () => {
  it('a command refused while the connection is down (no offline queue) was not sent', async () => {
    const redis = redisClient({ port: closedPort, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const err = await rejection(redis.get('k'));
    expect(err.message).toMatch(/^Stream isn't writeable/);
    expect(classifyFailure(err)).toBe('not-sent');
  });

  it('a command without a reply within commandTimeout: unreachable', async () => {
    const redis = redisClient({
      port: silent.port,
      enableReadyCheck: false,
      commandTimeout: 50,
      maxRetriesPerRequest: 0,
    });
    const err = await rejection(redis.get('k'));
    expect(err.message).toBe('Command timed out');
    expect(classifyFailure(err)).toBe('unreachable');
  });

  it('a command in flight when its connection drops (retries spent): unreachable', async () => {
    const redis = redisClient({ url: REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const killer = redisClient({ url: REDIS_URL });
    await once(redis, 'ready');
    const id = await redis.client('ID');
    const blocked = rejection(redis.blpop(`failures-test:${randomBytes(4).toString('hex')}`, 0));
    // Killed while the BLPOP blocks (the server lists the client as blocked), not before it was sent.
    await waitFor(
      async () => String(await killer.client('LIST', 'ID', String(id))).includes('cmd=blpop'),
      'the BLPOP blocking',
    );
    await killer.client('KILL', 'ID', String(id));
    const err = await blocked;
    expect(err.name).toBe('MaxRetriesPerRequestError');
    expect(classifyFailure(err)).toBe('unreachable');
  });

  it('a command on a closed connection: unreachable', async () => {
    const redis = redisClient({ port: closedPort, lazyConnect: true });
    redis.disconnect();
    const err = await rejection(redis.get('k'));
    expect(err.message).toMatch(/^Connection is closed/);
    expect(classifyFailure(err)).toBe('unreachable');
  });

  it('a connection refused: unreachable', async () => {
    const redis = redisClient({ port: closedPort, lazyConnect: true, retryStrategy: () => null });
    const err = await rejection(redis.connect());
    expect(classifyFailure(err)).toBe('unreachable');
  });

  describe('Redis refusing writes', () => {
    let server: PrivateRedis;
    let redis: Redis;
    beforeAll(async () => {
      server = await startPrivateRedis({ aof: false });
      redis = redisClient({ url: server.url });
    });
    afterAll(async () => {
      await server?.destroy();
    });

    it('OOM (full under noeviction), from a command and from a script: refused', async () => {
      await redis.set('before', 'x');
      await redis.config('SET', 'maxmemory', '1');
      try {
        const fromCommand = await rejection(redis.set('k', 'v'));
        const fromScript = await rejection(redis.eval("return redis.call('SET', KEYS[1], 'v')", 1, 'k'));
        for (const err of [fromCommand, fromScript]) {
          expect(err).toBeInstanceOf(ReplyError);
          expect(err.message).toMatch(/^OOM /);
          expect(classifyFailure(err)).toBe('refused');
        }
      } finally {
        await redis.config('SET', 'maxmemory', '0');
      }
    });

    it('READONLY (a replica): refused; a reply error of our own making: other', async () => {
      const wrongType = await rejection(redis.lpush('before', 'x'));
      expect(wrongType).toBeInstanceOf(ReplyError);
      expect(classifyFailure(wrongType)).toBe('other');
      const badScript = await rejection(redis.eval('return redis.call("NOSUCHCOMMAND")', 0));
      expect(classifyFailure(badScript)).toBe('other');

      await redis.replicaof('127.0.0.1', String(closedPort));
      try {
        const err = await rejection(redis.set('k', 'v'));
        expect(err).toBeInstanceOf(ReplyError);
        expect(err.message).toMatch(/^READONLY /);
        expect(classifyFailure(err)).toBe('refused');
      } finally {
        await redis.replicaof('NO', 'ONE');
      }
    });
  });
});

describe('pg failures', () => {
  const url = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;

  it('a connection refused, by address or by a name that resolves to several: unreachable', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const client = new pg.Client({ connectionString: `postgres://postgres@${host}:${closedPort}/postgres` });
      const err = await rejection(client.connect());
      expect(classifyFailure(err), host).toBe('unreachable');
    }
  });

  it('a server that hangs up at once: unreachable', async () => {
    const client = new pg.Client({ connectionString: url(hangsUp.port) });
    const err = await rejection(client.connect());
    expect(err.message).toMatch(/^Connection terminated/);
    expect(classifyFailure(err)).toBe('unreachable');
  });

  it('a pool whose new connection times out, or that has none free in time: unreachable', async () => {
    const pool = new pg.Pool({ connectionString: url(silent.port), connectionTimeoutMillis: 100 });
    const err = await rejection(pool.query('SELECT 1'));
    expect(err.message).toMatch(/^Connection terminated due to connection timeout/);
    expect(classifyFailure(err)).toBe('unreachable');
    await pool.end();

    const busy = new pg.Pool({ connectionString: ADMIN_URL, max: 1, connectionTimeoutMillis: 100 });
    const held = await busy.connect();
    try {
      const waited = await rejection(busy.query('SELECT 1'));
      expect(waited.message).toBe('timeout exceeded when trying to connect');
      expect(classifyFailure(waited)).toBe('unreachable');
    } finally {
      held.release();
      await busy.end();
    }
  });

  it('a session ended by the server (admin_shutdown): unreachable; the next query: unreachable', async () => {
    const victim = new pg.Client({ connectionString: ADMIN_URL });
    victim.on('error', () => undefined);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await Promise.all([victim.connect(), admin.connect()]);
    try {
      const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const sleeping = rejection(victim.query('SELECT pg_sleep(30)'));
      // Terminated while the query runs (seen running by the server), not before it was sent.
      await waitFor(
        async () =>
          (
            await admin.query<{ active: boolean }>(
              "SELECT count(*) > 0 AS active FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
              [rows[0]?.pid],
            )
          ).rows[0]?.active,
        'the sleeping query running',
      );
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
      const err = await sleeping;
      expect(err).toBeInstanceOf(pg.DatabaseError);
      expect(err).toMatchObject({ code: '57P01' });
      expect(classifyFailure(err)).toBe('unreachable');
      expect(classifyFailure(await rejection(victim.query('SELECT 1')))).toBe('unreachable');
    } finally {
      await admin.end();
    }
  });

  it('a query the server rejects (syntax, constraint): other', async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
    try {
      const syntax = await rejection(client.query('SELEC 1'));
      expect(syntax).toBeInstanceOf(pg.DatabaseError);
      expect(classifyFailure(syntax)).toBe('other');
      const unique = await rejection(
        client.query('CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)'),
      );
      expect(unique).toMatchObject({ code: '23505' });
      expect(classifyFailure(unique)).toBe('other');
    } finally {
      await client.end();
    }
  });
});

describe('anything else', () => {
  it('is other: our own errors, and what is not an Error at all', () => {
    expect(classifyFailure(new TypeError('x is undefined'))).toBe('other');
    expect(classifyFailure(new Error('OOM'))).toBe('other');
    expect(classifyFailure('Command timed out')).toBe('other');
    expect(classifyFailure({ code: 'ECONNREFUSED' })).toBe('other');
    expect(classifyFailure(undefined)).toBe('other');
  });
});
