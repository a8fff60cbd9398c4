/**
 * `npm run bench:persist`: how fast the persist worker moves a backlog into PostgreSQL.
 * Accepts N messages into Redis with the message log's append (active lists, pending sets,
 * persist tickets) and enqueues each claimed chat's persist job, as the api does, then starts the real
 * persist worker in this process and times the drain into PostgreSQL. Uses a throwaway
 * database and key prefix on DATABASE_URL's server and REDIS_URL, and removes them afterwards.
 *   npm run bench:persist -- --messages 50000 --chats 50 --runs 3
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import pg from 'pg';
import format from 'pg-format';
import { loadConfig } from '../src/config.js';
import { ensureDatabase, migrate } from '../src/db/migrate.js';
import { freshMessage } from '../src/domain/types.js';
import { createPgPool, createRedis } from '../src/infra/clients.js';
import { createLogger } from '../src/logger.js';
import { createMessageLog, logSettingsOf } from '../src/message-log/message-log.js';
import { type PersistJob, persistJobOptions, QUEUES } from '../src/queues/definitions.js';
import { bullPersistQueue } from '../src/queues/persist-queue.js';
import { scanKeys } from '../src/redis/scan.js';
import { createMessageStore } from '../src/stores/message-store.js';
import { createPersistWorker } from '../workers/persist-worker.js';
import { median } from './histogram.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '50000' },
    chats: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
  },
});
const N = Number(values.messages);
const CHATS = Number(values.chats);
const RUNS = Number(values.runs);

async function run(): Promise<{ rate: number; rowsPerInsert: number; batches: number }> {
  const id = randomBytes(4).toString('hex');
  const base = loadConfig();
  const url = new URL(base.DATABASE_URL);
  const dbName = `parley_bench_${id}`;
  url.pathname = `/${dbName}`;
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url.toString(),
    REDIS_KEY_PREFIX: `bench${id}:`,
    QUEUE_PREFIX: `{bench${id}}`,
    LOG_LEVEL: 'warn',
  });
  await ensureDatabase(config.DATABASE_URL);
  const pool = createPgPool(config, 'parley-bench');
  const connection = createRedis(config, 'queue', 'bench');
  const workerConnection = createRedis(config, 'queue', 'bench-worker');
  const queue = new Queue<PersistJob>(QUEUES.persist, { connection, prefix: config.QUEUE_PREFIX });
  let worker: { close(): Promise<void> } | undefined;
  try {
    await migrate(pool);
    const log = createMessageLog({
      redis: connection,
      prefix: config.REDIS_KEY_PREFIX,
      queue: bullPersistQueue([queue], persistJobOptions(config)),
      settings: logSettingsOf(config),
    });
    const chatIds = Array.from({ length: CHATS }, () => randomUUID());
    const sender = randomUUID();
    for (const chatId of chatIds) {
      await connection.sadd(log.keys.members(chatId), '', sender);
      await connection.set(log.keys.seq(chatId), 0);
      await connection.set(log.keys.rev(chatId), 0);
    }
    const createdAt = new Date().toISOString();
    const body = 'benchmark message '.padEnd(80, 'x');
    for (let i = 0; i < N; i += 1000) {
      const appends = [];
      for (let k = i; k < Math.min(N, i + 1000); k++) {
        appends.push(
          log.append({
            id: randomUUID(),
            chatId: chatIds[k % CHATS]!,
            senderId: sender,
            body,
            clientMsgId: null,
            createdAt,
            ...freshMessage(),
          }),
        );
      }
      const results = await Promise.all(appends);
      if (results.some((r) => r.kind !== 'accepted')) throw new Error('a backlog send was refused');
      // As the api does: the appends that claimed their chat's ticket add the chat's job.
      await log.enqueue(results.flatMap((r) => (r.kind === 'accepted' && r.claim ? [r.claim] : [])));
    }

    let done = 0;
    let batches = 0;
    let finished!: () => void;
    const allDone = new Promise<void>((r) => (finished = r));
    const started = performance.now();
    worker = createPersistWorker({
      config,
      connection: workerConnection,
      log,
      insertBatch: createMessageStore(pool).insertBatch,
      updateChanges: createMessageStore(pool).updateChanges,
      logger: createLogger('warn', 'bench'),
      onBatch: (size) => {
        done += size;
        batches++;
        if (done >= N) finished();
      },
    });
    await allDone;
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
    if (rows[0]?.n !== N) throw new Error(`expected ${N} rows, found ${rows[0]?.n}`);
    return { rate: N / seconds, rowsPerInsert: N / batches, batches };
  } finally {
    // Whatever happened, nothing of the run stays behind: its worker, queue, keys, connections, database.
    await worker?.close();
    await queue.obliterate({ force: true });
    await queue.close();
    for await (const keys of scanKeys([connection], `bench${id}:*`)) await connection.unlink(...keys);
    workerConnection.disconnect();
    connection.disconnect();
    await pool.end();
    const admin = new pg.Client({ connectionString: new URL('/postgres', base.DATABASE_URL).toString() });
    await admin.connect();
    try {
      await admin.query(format('DROP DATABASE %I WITH (FORCE)', dbName));
    } finally {
      await admin.end();
    }
  }
}

const results = [];
for (let r = 1; r <= RUNS; r++) {
  const res = await run();
  results.push(res);
  console.log(
    `run ${r}: ${Math.round(res.rate)} messages/s, ${res.batches} INSERTs, ${res.rowsPerInsert.toFixed(1)} rows per INSERT`,
  );
}
console.log(
  `median of ${RUNS}: ${Math.round(median(results.map((r) => r.rate))!)} messages/s, ${median(results.map((r) => r.rowsPerInsert))!.toFixed(1)} rows per INSERT (${N} messages, ${CHATS} chats, batch size ${loadConfig().PERSIST_BATCH_SIZE})`,
);
