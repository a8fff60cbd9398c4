import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { type Config, loadConfig } from '../../src/config.js';
import { ensureDatabase, migrate } from '../../src/db/migrate.js';
import { createLogKeys } from '../../src/message-log/keys.js';
import { QUEUES } from '../../src/queues/definitions.js';
import { queueShards } from '../../src/queues/shards.js';
import { parseClusterSeed } from '../../src/infra/clients.js';
import { keyNodes, type RedisClient } from '../../src/redis/client.js';
import { scanKeys } from '../../src/redis/scan.js';
import { changesStored, checkChanges, type StoredRow } from './change-check.js';
import { type Acked, LoadClient } from './load-client.js';
import {
  type PrivateCluster,
  type PrivateRedis,
  startPrivateCluster,
  startPrivatePostgres,
  startPrivateRedis,
} from './private-services.js';
import { childEnv, type RunningProcess, startApiProcess, startWorkerProcess } from './processes.js';

export const SCENARIOS = [
  'worker-kill',
  'api-kill',
  'redis-kill-aof',
  'redis-restart-empty',
  'redis-down',
  'postgres-down',
  'cluster-master-kill',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioResult {
  scenario: ScenarioName;
  acked: number;
  persisted: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Edits, deletes and reactions acked (by the clients' `changes` share of their operations). */
  changesAcked: number;
  /** Messages whose row in PostgreSQL lost an acked change (a lower rev, another body, a reaction). */
  lostChanges: number;
  /** Messages deleted with an ack whose row is not a tombstone. */
  resurrectedDeletes: number;
  /** Messages whose row shows an older acked edit than the last acked one. */
  outOfOrderEdits: number;
  /** Changes refused for good (a tombstone's: conflict), by code: not acked, so not checked. */
  changesRefused: Record<string, number>;
  /** Messages left out of the change checks: a change of them got no answer for good. */
  unsettledMessages: number;
  /** From the end of the fault until every api is in normal mode and acks again, in ms. */
  recoverMs: number;
  /**
   * From the end of the fault (for worker-kill: the new worker is up) until PostgreSQL holds
   * every message acked before it, in ms; null when it did not within CATCH_UP_TIMEOUT_MS.
   */
  catchUpMs: number | null;
}

/** The clients' default share of changes among their operations. */
export const DEFAULT_CHANGES = 0.3;

/** Longest the checker waits for PostgreSQL to catch up after a fault. */
export const CATCH_UP_TIMEOUT_MS = 60_000;

export interface CheckerOptions {
  /** Total time the clients send for, in ms (the fault sits in its middle). */
  loadMs: number;
  /** How long the fault lasts before it is healed, in ms (redis-down and postgres-down). */
  outageMs: number;
  clients: number;
  chats: number;
  /** Pause between a client's operations (sends and changes), in ms. */
  intervalMs: number;
  /**
   * Share of the clients' operations that edit, delete or react to an existing message instead of
   * sending a new one (default DEFAULT_CHANGES; 0: sends only).
   */
  changes?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `xs[i]`, which the run's own setup made: its absence is the checker's bug, said as such. */
function at<T>(xs: readonly T[], i: number, what: string): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no ${what} #${i} (of ${xs.length})`);
  return x;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/**
 * Resolves with the time from `since` until PostgreSQL holds every one of `clientMsgIds` (null
 * after CATCH_UP_TIMEOUT_MS), polling every 100 ms while the load goes on.
 */
async function caughtUp(pool: pg.Pool, clientMsgIds: string[], since: number): Promise<number | null> {
  const deadline = since + CATCH_UP_TIMEOUT_MS;
  for (;;) {
    const { rows } = await pool
      .query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE client_msg_id = ANY($1)', [clientMsgIds])
      .catch(() => ({ rows: [{ n: -1 }] }));
    if ((rows[0]?.n ?? -1) >= clientMsgIds.length) return Date.now() - since;
    // Past the deadline, or the run ended early (its pool with it).
    if (Date.now() > deadline || pool.ending) return null;
    await sleep(100);
  }
}

/** A client of the processes' Redis, or of their cluster, for looking at what they wrote. */
async function inspector(config: Config): Promise<RedisClient> {
  const client: RedisClient = config.REDIS_CLUSTER_NODES
    ? new Cluster(config.REDIS_CLUSTER_NODES.map(parseClusterSeed), { redisOptions: { maxRetriesPerRequest: 1 } })
    : new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  // A cluster client knows its masters (to SCAN) once it has read the slots.
  if (client instanceof Cluster) await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

/** Every shard of the persist queue (PERSIST_SHARDS). */
const persistQueues = (config: Config, redis: RedisClient): Queue[] =>
  queueShards(QUEUES.persist, config.QUEUE_PREFIX, config.PERSIST_SHARDS).map(
    (shard) => new Queue(shard.name, { connection: redis, prefix: shard.prefix }),
  );

/** Resolves once a worker holds persist jobs (locked, being written): the moment to kill it. */
async function workerBusy(config: Config, timeoutMs: number): Promise<boolean> {
  const redis = await inspector(config);
  const queues = persistQueues(config, redis);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const queue of queues) if ((await queue.getActiveCount()) > 0) return true;
      await sleep(5);
    }
    return false;
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
  }
}

/** True when the processes' Redis has no pending set and no persist job waiting, active or delayed. */
async function nothingToPersist(config: Config): Promise<boolean> {
  const redis = await inspector(config);
  const queues = persistQueues(config, redis);
  const pendingPattern = createLogKeys(config.REDIS_KEY_PREFIX).pendingPattern();
  // Changes wait in their own set next to it (keys.ts: `chat:{id}:changes:pending`).
  const pendingChangesPattern = pendingPattern.replace(/:pending$/, ':changes:pending');
  try {
    for (const pattern of [pendingPattern, pendingChangesPattern])
      for await (const pendingSets of scanKeys(keyNodes(redis), pattern)) if (pendingSets.length > 0) return false;
    for (const queue of queues) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (!Object.values(counts).every((n) => n === 0)) return false;
    }
    return true;
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
  }
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
}

/**
 * Runs one scenario on a private world: its own redis-server (or, for cluster-master-kill, a
 * Redis Cluster of 3 masters with a replica each) and PostgreSQL, two api processes and a worker;
 * a load of retrying clients; the fault injected in the middle of the load; then every acked
 * message is checked against PostgreSQL.
 */
export async function runScenario(scenario: ScenarioName, o: CheckerOptions): Promise<ScenarioResult> {
  const log = o.log ?? (() => undefined);
  const onCluster = scenario === 'cluster-master-kill';
  // One of the two, by the scenario.
  const cluster: PrivateCluster | null = onCluster
    ? await startPrivateCluster({ masters: 3, replicasPerMaster: 1 })
    : null;
  const redis: PrivateRedis | null = onCluster
    ? null
    : await startPrivateRedis({ aof: scenario !== 'redis-restart-empty' });
  const postgres = await startPrivatePostgres();
  const dbUrl = `${postgres.baseUrl}/parley`;
  await ensureDatabase(dbUrl);
  const setupPool = new pg.Pool({ connectionString: dbUrl });
  await migrate(setupPool);
  await setupPool.end();

  const env: Record<string, string> = {
    DATABASE_URL: dbUrl,
    ...(cluster
      ? // Acks wait for the slot's replica (REDIS_WAIT_REPLICAS): the replica that takes over holds them.
        { REDIS_CLUSTER_NODES: cluster.seedList, REDIS_WAIT_REPLICAS: '1' }
      : { REDIS_URL: (redis as PrivateRedis).url }),
    REDIS_KEY_PREFIX: '',
    PORT: '0',
    LOG_LEVEL: 'error',
    PASSWORD_HASH_COST: '1024',
    // The checker's clients register and log in from one address, past a deployment's limits.
    REGISTRATIONS_PER_MIN: '100000',
    LOGINS_PER_MIN: '100000',
    // The lock and stall settings are the defaults: the worker-kill figure is a deployment's.
    PERSIST_BATCH_WAIT_MS: '5',
    PERSIST_BACKOFF_MS: '100',
    PERSIST_BACKOFF_CAP_MS: '2000',
    REDIS_PROBE_MS: '200',
    DEGRADED_SEQ_GAP: '100000',
    WS_HEARTBEAT_MS: '1000',
  };
  // The settings the processes run with (the queue prefix, the key prefix), to look where they write.
  const config = loadConfig(childEnv(env));
  const firstApis = await Promise.all([startApiProcess(env), startApiProcess(env)]);
  const apis: (RunningProcess | undefined)[] = [...firstApis];
  let worker: RunningProcess | undefined = await startWorkerProcess(env);
  const pool = new pg.Pool({ connectionString: dbUrl });
  pool.on('error', () => undefined);

  try {
    // The clients know the first two apis' addresses; a restarted api listens on another port.
    const apiUrls = firstApis.map((a) => a.url);
    const base = at(apiUrls, 0, 'api');
    const users = await Promise.all(
      Array.from({ length: o.clients }, async (_, i) => {
        const username = `load${i}_${randomBytes(3).toString('hex')}`;
        await json(`${base}/api/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username, password: 'load-password' }),
        });
        const s = await json<{ token: string; user: { id: string } }>(`${base}/api/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username, password: 'load-password' }),
        });
        return s.body;
      }),
    );
    const chatIds: string[] = [];
    for (let c = 0; c < o.chats; c++) {
      const members = users.filter((_, i) => i % o.chats === c);
      const r = await json<{ chat: { id: string } }>(`${base}/api/chats`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${at(members, 0, 'member').token}` },
        body: JSON.stringify({ title: `load ${c}`, memberIds: members.slice(1).map((m) => m.user.id) }),
      });
      chatIds.push(r.body.chat.id);
    }
    const urls = () => apis.filter((a): a is RunningProcess => a !== undefined).map((a) => a.url);
    const clients = users.map(
      (u, i) =>
        new LoadClient(
          {
            userId: u.user.id,
            token: u.token,
            chatId: at(chatIds, i % o.chats, 'chat'),
            urls: apiUrls,
            intervalMs: o.intervalMs,
            ackTimeoutMs: 2000,
            changes: o.changes ?? DEFAULT_CHANGES,
          },
          i,
        ),
    );
    clients.forEach((c) => c.start());
    const started = Date.now();
    await sleep(o.loadMs / 3);

    log(`${scenario}: inject`);
    switch (scenario) {
      case 'worker-kill':
        // Under load, as a real crash would find it: in the middle of writing batches, holding
        // the jobs (and so the persist tickets) of the chats it was writing.
        if (!(await workerBusy(config, 5000))) log(`${scenario}: the worker held no job when killed`);
        await worker.kill('SIGKILL');
        worker = undefined;
        await sleep(300);
        worker = await startWorkerProcess(env);
        break;
      case 'api-kill':
        await apis[0]?.kill('SIGKILL');
        apis[0] = undefined;
        await sleep(300);
        apis[0] = await startApiProcess(env);
        break;
      case 'redis-kill-aof':
        await redis?.kill('SIGKILL');
        await sleep(300);
        await redis?.start();
        break;
      case 'redis-restart-empty':
        await redis?.kill('SIGKILL');
        redis?.wipe();
        await sleep(300);
        await redis?.start();
        break;
      case 'redis-down':
        await redis?.kill('SIGKILL');
        await sleep(o.outageMs);
        await redis?.start();
        break;
      case 'cluster-master-kill': {
        if (!cluster) throw new Error('cluster-master-kill needs the cluster');
        // The master of the first chat's slot: its replica takes over (cluster-node-timeout 2 s).
        const chatKey = createLogKeys(config.REDIS_KEY_PREFIX).seq(at(chatIds, 0, 'chat'));
        const killed = await cluster.killMaster(chatKey);
        const promoted = await cluster.waitForFailover(chatKey, killed);
        log(`${scenario}: master ${killed.address} killed, ${promoted.address} took over`);
        // The old master comes back as the new one's replica.
        await killed.start();
        break;
      }
      case 'postgres-down':
        await postgres.stop();
        await sleep(o.outageMs);
        await postgres.start();
        break;
    }
    const healed = Date.now();
    log(`${scenario}: healed`);
    // Everything acked so far must reach PostgreSQL; how long that takes is the catch-up.
    const catchUp = caughtUp(
      pool,
      clients.flatMap((c) => c.acked.map((a) => a.clientMsgId)),
      healed,
    );
    // Recovered: every api ready in normal mode, and a fresh send acked on each.
    const probeUser = at(users, 0, 'user');
    // What the last look found missing (said when recovery times out).
    let missing = '';
    await until(
      async () => {
        for (const url of urls()) {
          const r = await json<{ mode: string; redis: boolean; postgres: boolean }>(`${url}/readyz`);
          missing = `${url}/readyz: ${JSON.stringify(r.body)}`;
          if (r.body?.mode !== 'normal' || !r.body.redis || !r.body.postgres) return false;
          const sent = await json(`${url}/api/chats/${chatIds[0]}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${probeUser.token}` },
            body: JSON.stringify({ body: 'probe', clientMsgId: `probe-${randomBytes(4).toString('hex')}` }),
          });
          missing = `a probe send on ${url}: ${sent.status} ${JSON.stringify(sent.body)}`;
          if (sent.status !== 201) return false;
        }
        return true;
      },
      'recovery',
      60_000,
    ).catch((err: unknown) => {
      log(`${scenario}: not recovered; last look: ${missing}`);
      throw err;
    });
    const recoverMs = Date.now() - healed;

    await sleep(Math.max(0, o.loadMs - (Date.now() - started)));
    await Promise.all(clients.map((c) => c.stop()));
    const acked: Acked[] = clients.flatMap((c) => c.acked);

    const changes = clients.flatMap((c) => c.changes);
    const readRows = async () =>
      (
        await pool.query<StoredRow & { clientMsgId: string | null }>(
          `SELECT chat_id AS "chatId", seq::int AS seq, client_msg_id AS "clientMsgId", body,
                  deleted_at AS "deletedAt", reactions, rev::int AS rev
             FROM messages WHERE chat_id = ANY($1)`,
          [chatIds],
        )
      ).rows;

    // Drain: every acked message, and every acked change, should reach PostgreSQL. The wait also
    // ends once Redis holds nothing more to persist (no pending set, no persist job), as after
    // Redis lost its data.
    const ackedIds = acked.map((a) => a.clientMsgId);
    const allStored = async () =>
      (await pool.query('SELECT count(*)::int AS n FROM messages WHERE client_msg_id = ANY($1)', [ackedIds])).rows[0]
        .n >= acked.length && changesStored(changes, await readRows());
    let idleChecks = 0;
    await until(
      async () => {
        if (await allStored()) return true;
        idleChecks = (await nothingToPersist(config)) ? idleChecks + 1 : 0;
        return idleChecks >= 5 && !(await allStored());
      },
      'persistence to catch up',
      60_000,
    ).catch(() => log(`${scenario}: not everything acked reached PostgreSQL within 60 s`));

    // The recovery probes are left out of the message checks (the clients may react to them).
    const allRows = await readRows();
    const rows = allRows.filter((r) => !r.clientMsgId?.startsWith('probe-'));
    const byClientId = new Map(rows.flatMap((r) => (r.clientMsgId ? [[r.clientMsgId, r] as const] : [])));
    const persisted = acked.filter((a) => byClientId.get(a.clientMsgId)?.seq === a.seq).length;
    // A message's body is its send's clientMsgId, an edit's starts with it (`<id>~e<n>`); a
    // tombstone has none left, but its row keeps the clientMsgId.
    const identity = (r: (typeof rows)[number]) =>
      r.deletedAt !== null && r.body === ''
        ? (r.clientMsgId ?? `tombstone ${r.chatId}/${r.seq}`)
        : r.body.split('~')[0];
    const bodies = new Map<string, number>();
    for (const r of rows) bodies.set(identity(r) ?? '', (bodies.get(identity(r) ?? '') ?? 0) + 1);
    const seqOwners = new Map<string, string>();
    let seqReuse = 0;
    for (const a of acked) {
      const key = `${a.chatId}/${a.seq}`;
      if (seqOwners.has(key) && seqOwners.get(key) !== a.clientMsgId) {
        seqReuse++;
        log(`${scenario}: seq ${key} acked to ${seqOwners.get(key)} and to ${JSON.stringify(a)}`);
      }
      seqOwners.set(key, a.clientMsgId);
    }
    const duplicated = [...bodies.values()].reduce((n, c) => n + (c - 1), 0) + seqReuse;
    if (duplicated > 0) {
      const twice = [...bodies].filter(([, c]) => c > 1).map(([b]) => b);
      log(
        `${scenario}: duplicated: bodies stored twice ${JSON.stringify(rows.filter((r) => twice.includes(identity(r) ?? '')))}; seqs reused ${seqReuse}`,
      );
    }
    // Each client sends one message at a time, so its acked seqs must strictly grow.
    let outOfOrder = 0;
    for (const c of clients) {
      let previous: Acked | undefined;
      for (const a of c.acked) {
        if (previous && a.seq <= previous.seq) {
          outOfOrder++;
          log(`${scenario}: out of order: ${JSON.stringify(previous)} then ${JSON.stringify(a)}`);
        }
        previous = a;
      }
    }

    // Every acked change against the final state of its message.
    const unsettled = new Set(clients.flatMap((c) => [...c.unsettled]));
    const checked = checkChanges(acked, changes, allRows, unsettled);
    for (const p of checked.problems.slice(0, 20)) log(`${scenario}: ${p}`);
    const changesRefused: Record<string, number> = {};
    for (const c of clients)
      for (const [code, n] of Object.entries(c.refused)) changesRefused[code] = (changesRefused[code] ?? 0) + n;

    return {
      scenario,
      acked: acked.length,
      persisted,
      lost: acked.length - persisted,
      duplicated,
      outOfOrder,
      changesAcked: checked.changesAcked,
      lostChanges: checked.lostChanges,
      resurrectedDeletes: checked.resurrectedDeletes,
      outOfOrderEdits: checked.outOfOrderEdits,
      changesRefused,
      unsettledMessages: checked.unsettled,
      recoverMs,
      catchUpMs: await catchUp,
    };
  } finally {
    await Promise.all([...apis, worker].map((p) => p?.kill('SIGKILL')));
    await pool.end().catch(() => undefined);
    await redis?.destroy();
    await cluster?.destroy();
    await postgres.destroy();
  }
}

export function formatTable(results: ScenarioResult[]): string {
  const head = [
    'scenario',
    'acked',
    'persisted',
    'lost',
    'duplicated',
    'out of order',
    'changes acked',
    'lost changes',
    'resurrected deletes',
    'out-of-order edits',
    'recover ms',
    'PostgreSQL caught up ms',
  ];
  const rows = results.map((r) =>
    [
      r.scenario,
      r.acked,
      r.persisted,
      r.lost,
      r.duplicated,
      r.outOfOrder,
      r.changesAcked,
      r.lostChanges,
      r.resurrectedDeletes,
      r.outOfOrderEdits,
      r.recoverMs,
      r.catchUpMs ?? `> ${CATCH_UP_TIMEOUT_MS}`,
    ].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
