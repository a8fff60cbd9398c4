import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import format from 'pg-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { freshMessage, type Message } from '../../src/domain/types.js';
import { createPgPool } from '../../src/infra/clients.js';
import { createMessageLog, logSettingsOf } from '../../src/message-log/message-log.js';
import { createHistoryService, type HistoryPage } from '../../src/services/history-service.js';
import { createDirectMessageStore } from '../../src/stores/direct-message-store.js';
import { createMessageStore, MESSAGE_COLUMNS } from '../../src/stores/message-store.js';
import { ADMIN_URL, databaseUrl } from '../helpers/pg.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

/**
 * Migration 011 (messages hash-partitioned by chat_id) on a database that already holds messages:
 * the schema is built up to the migration before it, filled through the real stores, migrated, and
 * then everything PostgreSQL held and answered must be the same, on a partitioned table.
 */
const PARTITIONING = 11;
const PARTITIONS = 16;

let env: TestEnv;
let admin: pg.Client;
let databaseName: string;
let pool: pg.Pool;

beforeAll(async () => {
  // The test's Redis prefix and config; its database is one of its own, not the migrated template.
  env = await createTestEnv();
  databaseName = `parley_t_${randomBytes(5).toString('hex')}_v${PARTITIONING - 1}`;
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(format('CREATE DATABASE %I', databaseName));
  pool = createPgPool(loadConfig({ ...env.env, DATABASE_URL: databaseUrl(databaseName) }), 'parley-test');
});
afterAll(async () => {
  await pool?.end();
  if (databaseName) await admin?.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', databaseName));
  await admin?.end();
  await env?.cleanup();
});

const message = (chatId: string, senderId: string, seq: number, over: Partial<Message> = {}): Message => ({
  id: randomUUID(),
  chatId,
  senderId,
  seq,
  body: `chat ${chatId.slice(0, 8)} message ${seq} ✓`,
  clientMsgId: `c-${seq}`,
  createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, seq % 60, seq)).toISOString(),
  ...freshMessage(),
  rev: seq,
  ...over,
});

/**
 * The persist worker's batch INSERT as it was before migration 012 made sender_id text (the store
 * now binds it as text[], which a uuid column refuses): the fill of the version-10 database.
 */
async function insertBatchV10(messages: Message[]): Promise<number> {
  const { rowCount } = await pool.query(
    `INSERT INTO messages (${MESSAGE_COLUMNS})
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[],
                          $8::bigint[], $9::timestamptz[], $10::timestamptz[], $11::jsonb[], $12::bigint[])
     ON CONFLICT DO NOTHING`,
    [
      messages.map((m) => m.id),
      messages.map((m) => m.chatId),
      messages.map((m) => m.seq),
      messages.map((m) => m.senderId),
      messages.map((m) => m.body),
      messages.map((m) => m.clientMsgId),
      messages.map((m) => m.createdAt),
      messages.map((m) => m.replyTo),
      messages.map((m) => m.editedAt),
      messages.map((m) => m.deletedAt),
      messages.map((m) => JSON.stringify(m.reactions)),
      messages.map((m) => m.rev),
    ],
  );
  return rowCount ?? 0;
}

/** Every row, every column, as PostgreSQL renders it (so a changed type or value shows). */
const allRows = async () =>
  (
    await pool.query<{ row: string }>('SELECT row_to_json(m)::text AS row FROM messages m ORDER BY chat_id, seq')
  ).rows.map((r) => r.row);

/** The table's shape: columns (order, type, nullability, default), constraints and indexes. */
async function shape() {
  const columns = await pool.query(
    `SELECT ordinal_position, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns WHERE table_name = 'messages' ORDER BY ordinal_position`,
  );
  const constraints = await pool.query(
    `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = 'messages'::regclass ORDER BY conname`,
  );
  // A partitioned table's index is defined ON ONLY the parent; each partition has its own copy.
  const indexes = await pool.query(
    `SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') AS def FROM pg_indexes
      WHERE tablename = 'messages' ORDER BY indexname`,
  );
  return { columns: columns.rows, constraints: constraints.rows, indexes: indexes.rows };
}

/** Every chat's whole history, as a client reads it: GET messages pages, newest first, 7 at a time. */
async function histories(chatIds: string[]): Promise<Record<string, HistoryPage[]>> {
  // The real message log over the test's Redis prefix, which holds none of these chats (as when
  // Redis has archived them), so every page comes from PostgreSQL through the store's page().
  const log = createMessageLog({
    redis: env.redis,
    prefix: env.config.REDIS_KEY_PREFIX,
    settings: logSettingsOf(env.config),
  });
  const history = createHistoryService({ log, messages: createMessageStore(pool) });
  const out: Record<string, HistoryPage[]> = {};
  for (const chatId of chatIds) {
    const pages: HistoryPage[] = [];
    let before: number | undefined;
    for (;;) {
      const page = await history.page(chatId, { before, limit: 7 });
      pages.push(page);
      if (!page.hasMore) break;
      before = page.messages[0]!.seq;
    }
    // And forwards from the start, as `sync` reads.
    const after: HistoryPage[] = [];
    for await (const p of history.since(chatId, 0, 11)) after.push({ messages: p, hasMore: true });
    out[chatId] = [...pages, ...after];
  }
  return out;
}

describe('migration 011: messages partitioned by chat_id, on a database that holds messages', () => {
  const chatIds = Array.from({ length: 6 }, () => randomUUID());
  const userIds = [randomUUID(), randomUUID()];
  let before: { rows: string[]; shape: Awaited<ReturnType<typeof shape>>; histories: Record<string, HistoryPage[]> };

  beforeAll(async () => {
    const applied = await migrate(pool, { upTo: PARTITIONING - 1 });
    expect(applied.at(-1)).toMatch(new RegExp(`^0*${PARTITIONING - 1}_`));
    expect((await loadMigrations()).some((m) => m.version === PARTITIONING)).toBe(true);
    expect((await pool.query(`SELECT 1 FROM pg_partitioned_table`)).rowCount).toBe(0);

    const [alice, bob] = userIds as [string, string];
    for (const id of userIds) {
      await pool.query(`INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $2, 'x')`, [
        id,
        `p${id.slice(0, 8)}`,
      ]);
    }
    for (const chatId of chatIds) {
      await pool.query('INSERT INTO chats (id, created_by) VALUES ($1, $2)', [chatId, alice]);
      await pool.query('INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2), ($1, $3)', [chatId, alice, bob]);
    }
    const store = createMessageStore(pool);
    // Through the persist worker's batch INSERT: chats of different sizes, both senders, a
    // message without a clientMsgId, replies, a degraded-mode seq far above the rest.
    for (const [i, chatId] of chatIds.entries()) {
      const batch = Array.from({ length: 5 + 9 * i }, (_, k) =>
        message(chatId, k % 2 ? bob : alice, k + 1, {
          clientMsgId: k === 3 ? null : `c-${k + 1}`,
          replyTo: k > 2 && k % 4 === 0 ? k - 2 : null,
        }),
      );
      expect(await insertBatchV10(batch)).toBe(batch.length);
    }
    await insertBatchV10([message(chatIds[1]!, alice, 100_075, { clientMsgId: 'degraded-retry' })]);
    // Edits, deletes and reactions (the jsonb and timestamp columns of migration 010).
    const changed = await store.updateChanges([
      { ...message(chatIds[2]!, alice, 2), body: 'edited', editedAt: '2025-01-02T03:04:05.678Z', rev: 500 },
      { ...message(chatIds[2]!, bob, 3), body: '', deletedAt: '2025-01-02T03:04:06.000Z', rev: 501 },
      {
        ...message(chatIds[3]!, alice, 1),
        reactions: [
          { emoji: '👍', count: 2, userIds: [alice, bob] },
          { emoji: '🎉', count: 1, userIds: [bob] },
        ],
        rev: 502,
      },
    ]);
    expect(changed).toBe(3);
    // A degraded-mode send (the direct store's own INSERT) and a change through it.
    const direct = createDirectMessageStore(pool, 1000);
    const sent = await direct.send({
      id: randomUUID(),
      chatId: chatIds[4]!,
      senderId: bob,
      body: 'sent while Redis was away',
      clientMsgId: 'direct-1',
      createdAt: '2025-01-03T00:00:00.000Z',
      ...freshMessage(1),
    });
    await direct.change({
      chatId: chatIds[4]!,
      seq: sent.message.seq,
      actorId: bob,
      apply: (m) => ({ ...m, body: 'sent, then edited', editedAt: '2025-01-03T00:00:01.000Z' }),
    });
    // And volume: many rows in one chat, written in bulk above the ones it has.
    await pool.query(
      `INSERT INTO messages (id, chat_id, seq, sender_id, body, client_msg_id, created_at, rev)
       SELECT gen_random_uuid(), $1, s, $2, 'bulk ' || s, 'bulk-' || s, timestamptz '2025-01-01' + s * interval '1 second', s
         FROM generate_series(1000, 3999) AS s`,
      [chatIds[5]!, alice],
    );

    before = { rows: await allRows(), shape: await shape(), histories: await histories(chatIds) };
    expect(before.rows.length).toBeGreaterThan(3000);

    expect(await migrate(pool, { upTo: PARTITIONING })).toEqual([
      expect.stringMatching(new RegExp(`^0*${PARTITIONING}_`)),
    ]);
  });

  it('keeps every row, column for column', async () => {
    const after = await allRows();
    expect(after.length).toBe(before.rows.length);
    expect(after).toEqual(before.rows);
  });

  it('keeps the columns, defaults, keys and index under their names', async () => {
    expect(await shape()).toEqual(before.shape);
  });

  it('answers history exactly as before', async () => {
    expect(await histories(chatIds)).toEqual(before.histories);
  });

  it('is a table hash-partitioned on chat_id, its rows in the partitions', async () => {
    const { rows } = await pool.query<{ strategy: string; column: string }>(
      `SELECT p.partstrat AS strategy, a.attname AS column
         FROM pg_partitioned_table p JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = 'messages'::regclass AND p.partnatts = 1`,
    );
    expect(rows).toEqual([{ strategy: 'h', column: 'chat_id' }]);
    const parts = await pool.query<{ name: string; bound: string; indexes: number }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
              (SELECT count(*)::int FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
         FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
        WHERE h.inhparent = 'messages'::regclass ORDER BY c.relname`,
    );
    expect(parts.rows).toHaveLength(PARTITIONS);
    parts.rows.forEach((p, r) => {
      expect(p.name).toBe(`messages_p${String(r).padStart(2, '0')}`);
      expect(p.bound).toBe(`FOR VALUES WITH (modulus ${PARTITIONS}, remainder ${r})`);
      // Each partition carries its copy of the primary key, the unique key and the rev index.
      expect(p.indexes).toBe(3);
    });
    // The chats' rows spread over the partitions.
    const spread = await pool.query<{ n: number; used: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT tableoid)::int AS used FROM messages',
    );
    expect(spread.rows[0]!.n).toBe(before.rows.length);
    expect(spread.rows[0]!.used).toBeGreaterThan(1);
    // A query keyed by chat reads its one partition.
    const plan = await pool.query<{ 'QUERY PLAN': string }>(
      'EXPLAIN (COSTS OFF) SELECT * FROM messages WHERE chat_id = $1 AND seq > 0 ORDER BY seq LIMIT 10',
      [chatIds[0]!],
    );
    const scanned = plan.rows.map((r) => r['QUERY PLAN']).filter((l) => /messages_p\d\d/.test(l));
    expect(scanned).toHaveLength(1);
  });

  it('then takes migration 012 (user ids as text): every row the same, sender_id text on every partition', async () => {
    expect(await migrate(pool)).toEqual([expect.stringMatching(/^0*12_/)]);
    expect(await allRows()).toEqual(before.rows);
    expect(await histories(chatIds)).toEqual(before.histories);
    const types = await pool.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE (table_name, column_name) IN (('users', 'id'), ('sessions', 'user_id'), ('chats', 'created_by'),
                                            ('chat_members', 'user_id'), ('messages', 'sender_id'), ('messages_p07', 'sender_id'))
        ORDER BY table_name, column_name`,
    );
    expect(types.rows.map((r) => `${r.table_name}.${r.column_name} ${r.data_type}`)).toEqual([
      'chat_members.user_id text',
      'chats.created_by text',
      'messages.sender_id text',
      'messages_p07.sender_id text',
      'sessions.user_id text',
      'users.id text',
    ]);
    // The foreign keys came back, under their names.
    const fks = await pool.query<{ conname: string }>(
      `SELECT conname FROM pg_constraint WHERE contype = 'f' AND confrelid = 'users'::regclass ORDER BY conname`,
    );
    expect(fks.rows.map((r) => r.conname)).toEqual([
      'chat_members_user_id_fkey',
      'chats_created_by_fkey',
      'sessions_user_id_fkey',
    ]);
    await expect(
      pool.query('INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2)', [chatIds[0]!, 'app-user:nobody']),
    ).rejects.toThrow(/foreign key/);
  });

  it('takes new messages and harmless retries, and enforces both keys', async () => {
    const store = createMessageStore(pool);
    const [alice, bob] = userIds as [string, string];
    const newChat = randomUUID();
    await pool.query('INSERT INTO chats (id, created_by) VALUES ($1, $2)', [newChat, alice]);
    const top = (await store.maxSeq(chatIds[0]!)) + 1;
    const batch = [message(chatIds[0]!, alice, top), message(newChat, bob, 1), message(newChat, bob, 2)];
    expect(await store.insertBatch(batch)).toEqual({ inserted: 3, superseded: [] });
    // The persist worker's retry of the same batch: ON CONFLICT DO NOTHING, nothing twice.
    expect(await store.insertBatch(batch)).toEqual({ inserted: 0, superseded: [] });
    expect((await store.page(newChat, 'after', 0, 10)).map((m) => m.seq)).toEqual([1, 2]);
    expect(await store.get(chatIds[0]!, top)).toEqual(batch[0]);
    const none = randomUUID();
    expect(await store.maxSeqs([chatIds[0]!, newChat, none])).toEqual(
      new Map([
        [chatIds[0]!, top],
        [newChat, 2],
        [none, 0],
      ]),
    );

    // A clientMsgId already stored at another seq (the unique key on (chat, sender, clientMsgId)):
    // a later retry is kept without its id, an unacked earlier attempt is superseded.
    const retry = message(newChat, bob, 9, { clientMsgId: batch[1]!.clientMsgId });
    expect(await store.insertBatch([retry])).toEqual({ inserted: 1, superseded: [] });
    expect((await store.get(newChat, 9))?.clientMsgId).toBeNull();
    await store.insertBatch([message(chatIds[1]!, alice, 100_076, { clientMsgId: 'late' })]);
    const first = message(chatIds[1]!, alice, 75, { clientMsgId: 'late' });
    expect(await store.insertBatch([first])).toEqual({ inserted: 0, superseded: [first] });

    // Without ON CONFLICT, a duplicate is refused by the partition's keys.
    const insert = (m: Message) =>
      pool.query(
        `INSERT INTO messages (id, chat_id, seq, sender_id, body, client_msg_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [m.id, m.chatId, m.seq, m.senderId, m.body, m.clientMsgId, m.createdAt],
      );
    await expect(insert({ ...batch[2]!, id: randomUUID(), clientMsgId: null })).rejects.toMatchObject({
      code: '23505',
      constraint: expect.stringMatching(/_pkey$/),
    });
    await expect(insert({ ...batch[2]!, seq: 50 })).rejects.toMatchObject({
      code: '23505',
      constraint: expect.stringMatching(/_chat_id_sender_id_client_msg_id_key$/),
    });
    // The defaults of migration 010 still fill a bare INSERT.
    await insert(message(newChat, bob, 60, { clientMsgId: null }));
    expect(await store.get(newChat, 60)).toMatchObject({ reactions: [], rev: 0, editedAt: null });
    // And a change still finds its row and respects a later rev.
    const changed = { ...batch[1]!, body: 'changed after the migration', editedAt: new Date().toISOString(), rev: 7 };
    expect(await store.updateChanges([changed])).toBe(1);
    expect(await store.updateChanges([{ ...changed, body: 'stale', rev: 6 }])).toBe(0);
    expect((await store.get(newChat, 1))?.body).toBe('changed after the migration');
  });

  it('is applied once: running the migrations again changes nothing', async () => {
    expect(await migrate(pool)).toEqual([]);
  });
});
