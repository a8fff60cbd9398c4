import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { applyChange } from '../../src/domain/message-changes.js';
import { freshMessage, type Message, type MessageChange } from '../../src/domain/types.js';
import { createRedis } from '../../src/infra/clients.js';
import { createLogger } from '../../src/logger.js';
import { loadLua } from '../../src/message-log/lua.js';
import {
  type AppendMessage,
  createMessageLog,
  logSettingsOf,
  type MessageLog,
  type PersistQueue,
} from '../../src/message-log/message-log.js';
import { persistJobOptions, type PersistJob, QUEUES } from '../../src/queues/definitions.js';
import { bullPersistQueue } from '../../src/queues/persist-queue.js';
import { createMessageStore, type InsertResult } from '../../src/stores/message-store.js';
import { createPersistWorker } from '../../workers/persist-worker.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The message log's operations and the persist-ticket protocol (src/message-log/persist-ticket.ts)
 * on the real Redis and PostgreSQL, with the real persist worker. Only the persist queue is a
 * function seam where a test needs a job add that fails or never answers.
 */
let env: TestEnv;
let queue: Queue<PersistJob>;
let connection: Redis;
const closers: (() => Promise<unknown>)[] = [];
const logger = createLogger('silent', 'test');
const CLAIM_MS = 300;

beforeAll(async () => {
  env = await createTestEnv({
    PERSIST_BATCH_WAIT_MS: '5',
    PERSIST_TICKET_CLAIM_MS: String(CLAIM_MS),
    ACTIVE_LIST_MAX: '5',
  });
  connection = createRedis(env.config, 'queue', 'test-queue');
  queue = new Queue<PersistJob>(QUEUES.persist, { connection, prefix: env.config.QUEUE_PREFIX });
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await queue?.close();
  connection?.disconnect();
  await env?.cleanup();
});

const bull = (): PersistQueue => bullPersistQueue([queue], persistJobOptions(env.config));

/** A message log on its own command connection, with `persist` as its queue. */
async function messageLog(persist: PersistQueue = bull(), config: Config = env.config): Promise<MessageLog> {
  const redis = createRedis(config, 'command', 'test-log');
  closers.push(() => redis.quit());
  await new Promise((resolve) => redis.once('ready', resolve));
  return createMessageLog({ redis, prefix: config.REDIS_KEY_PREFIX, queue: persist, settings: logSettingsOf(config) });
}

/** A chat in Redis (member set and counter) whose one member is `sender`. */
async function chatWith(log: MessageLog, sender: string): Promise<string> {
  const chatId = randomUUID();
  await env.redis.sadd(log.keys.members(chatId), '', sender);
  await env.redis.set(log.keys.seq(chatId), 0);
  await env.redis.set(log.keys.rev(chatId), 0);
  return chatId;
}

const draft = (chatId: string, senderId: string, body: string, clientMsgId: string | null = null): AppendMessage => ({
  id: randomUUID(),
  chatId,
  senderId,
  body,
  clientMsgId,
  createdAt: new Date().toISOString(),
  ...freshMessage(),
});

/** What the api does: append, then enqueue the claim if the append took one. */
async function send(log: MessageLog, m: AppendMessage) {
  const r = await log.append(m);
  if ((r.kind === 'accepted' || r.kind === 'duplicate') && r.claim) await log.enqueue([r.claim]);
  return r;
}

/** The real persist worker on `insertBatch` (which a test may hold back). */
async function persistWorker(
  insertBatch: (m: Message[]) => Promise<InsertResult>,
  overrides: Partial<Config> = {},
  onBatch?: (size: number) => void,
  persist: PersistQueue = bull(),
) {
  const config = { ...env.config, ...overrides };
  const log = await messageLog(persist, config);
  const workerConnection = createRedis(config, 'queue', 'test-worker');
  const worker = createPersistWorker({
    config,
    connection: workerConnection,
    log,
    insertBatch,
    updateChanges: createMessageStore(env.pool).updateChanges,
    logger,
    onBatch,
  });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= worker.close().then(() => workerConnection.disconnect()));
  closers.push(close);
  return { close };
}

const stored = async (chatId: string) =>
  (
    await env.pool.query<{ seq: number }>('SELECT seq FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId])
  ).rows.map((r) => r.seq);
const waitingFor = async (chatId: string) => (await queue.getWaiting()).filter((j) => j.data.chatId === chatId).length;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('the message log', () => {
  it('inlines its shared Lua helpers into every script', () => {
    const script = loadLua('append.lua');
    expect(script).not.toContain('--@include');
    expect(script).toContain('local function seqOf(m)');
  });

  it('gives a burst of appends one persist job, and the worker keeps writing the chat while more arrive during a batch', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    for (let i = 0; i < 20; i++) await send(log, draft(chatId, sender, `burst ${i}`, `b${i}`));
    expect(await waitingFor(chatId)).toBe(1);
    expect(await env.redis.zcard(log.keys.pending(chatId))).toBe(20);
    // Once the job was added, the short claim became the long ticket.
    await waitFor(async () => (await env.redis.pttl(log.keys.ticket(chatId))) > CLAIM_MS, 'the claim confirmed');

    // The first INSERT is held back; messages appended meanwhile ride on no job of their own.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstBatch: number[] | undefined;
    const real = createMessageStore(env.pool);
    const worker = await persistWorker(async (batch) => {
      if (!firstBatch) {
        firstBatch = batch.map((m) => m.seq);
        await held;
      }
      return real.insertBatch(batch);
    });
    await waitFor(async () => firstBatch !== undefined, 'the first batch under way');
    expect(firstBatch).toEqual(range(1, 20));
    for (let i = 20; i < 25; i++) await send(log, draft(chatId, sender, `late ${i}`, `b${i}`));
    expect(await waitingFor(chatId)).toBe(0);
    release();

    // The batch finds them pending, keeps the ticket and writes them under the same job.
    await waitFor(async () => (await stored(chatId)).length === 25, 'all 25 in PostgreSQL');
    expect(await stored(chatId)).toEqual(range(1, 25));
    await waitFor(
      async () => (await env.redis.exists(log.keys.ticket(chatId), log.keys.pending(chatId))) === 0,
      'ticket released, nothing pending',
    );
    // Trimmed to ACTIVE_LIST_MAX once persisted.
    expect(await env.redis.llen(log.keys.active(chatId))).toBe(5);

    // The next append finds no ticket: it claims it and adds a job.
    await send(log, draft(chatId, sender, 'after', 'after'));
    await waitFor(async () => (await stored(chatId)).length === 26, 'the next message in PostgreSQL');
    await worker.close();
  });

  it('releases the claim when the job add fails, so that the retry with the same clientMsgId claims and adds it', async () => {
    const failing = await messageLog({ add: () => Promise.reject(new Error('queue unreachable')) });
    const sender = randomUUID();
    const chatId = await chatWith(failing, sender);
    await expect(send(failing, draft(chatId, sender, 'once', 'c1'))).rejects.toThrow('queue unreachable');
    // Accepted into Redis, pending, and no ticket left behind without a job.
    expect(await env.redis.zrange(failing.keys.pending(chatId), '0', '-1')).toEqual(['1']);
    expect(await env.redis.exists(failing.keys.ticket(chatId))).toBe(0);

    const log = await messageLog();
    const retry = await send(log, draft(chatId, sender, 'once (retried)', 'c1'));
    expect(retry.kind).toBe('duplicate');
    expect(retry.kind === 'duplicate' && JSON.parse(retry.json)).toMatchObject({ seq: 1, body: 'once' });
    expect(await waitingFor(chatId)).toBe(1);
    // A further retry while that job waits adds nothing.
    await send(log, draft(chatId, sender, 'once', 'c1'));
    expect(await waitingFor(chatId)).toBe(1);
  });

  it('lets the claim of an api that died before its job add run out; the next append adds the job', async () => {
    const dying = await messageLog({ add: () => new Promise<never>(() => undefined) });
    const sender = randomUUID();
    const chatId = await chatWith(dying, sender);
    const ticket = dying.keys.ticket(chatId);
    void send(dying, draft(chatId, sender, 'orphaned', 'd1'));
    await waitFor(async () => (await env.redis.zcard(dying.keys.pending(chatId))) === 1, 'accepted into Redis');
    expect(await env.redis.pttl(ticket)).toBeLessThanOrEqual(CLAIM_MS);
    expect(await waitingFor(chatId)).toBe(0);

    await waitFor(async () => (await env.redis.exists(ticket)) === 0, 'the claim ran out');
    const log = await messageLog();
    await send(log, draft(chatId, sender, 'next', 'd2'));
    expect(await waitingFor(chatId)).toBe(1);
    await waitFor(async () => (await env.redis.pttl(ticket)) > CLAIM_MS, 'the new claim confirmed');

    // That one job writes both messages.
    const worker = await persistWorker(createMessageStore(env.pool).insertBatch);
    await waitFor(async () => (await stored(chatId)).length === 2, 'both messages in PostgreSQL');
    expect(await stored(chatId)).toEqual([1, 2]);
    await worker.close();
  });

  it('keeps the ticket of a chat its job holds, and releases it when a read finds nothing pending', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    await send(log, draft(chatId, sender, 'first'));
    for (let i = 0; i < 2; i++) await log.append(draft(chatId, sender, `m${i}`));
    const [pending] = await log.readPending([chatId], 2);
    await createMessageStore(env.pool).insertBatch(pending!.messages.map((m) => m.message));
    // One message is still pending: the ticket is renewed for the job that holds the chat...
    expect(await log.markPersisted([{ chatId, seqs: pending!.messages.map((m) => m.message.seq) }])).toMatchObject([
      { more: true },
    ]);
    expect(await env.redis.pttl(log.keys.ticket(chatId))).toBeGreaterThan(CLAIM_MS);
    // ...so an append meanwhile rides on that job.
    await send(log, draft(chatId, sender, 'rides along'));
    expect(await waitingFor(chatId)).toBe(1);
    // A hand-on adds the chat's next job while the ticket is still held.
    await log.requeue([chatId]);
    expect(await waitingFor(chatId)).toBe(2);
    const [rest] = await log.readPending([chatId], 10);
    await createMessageStore(env.pool).insertBatch(rest!.messages.map((m) => m.message));
    expect(await log.markPersisted([{ chatId, seqs: rest!.messages.map((m) => m.message.seq) }])).toMatchObject([
      { more: false },
    ]);
    // Still held: the job reads the chat once more, finds nothing, and that read lets it go.
    expect(await env.redis.exists(log.keys.ticket(chatId))).toBe(1);
    expect((await log.readPending([chatId], 10))[0]!.messages).toEqual([]);
    expect(await env.redis.exists(log.keys.ticket(chatId), log.keys.pending(chatId))).toBe(0);
    expect(await stored(chatId)).toEqual([1, 2, 3, 4]);
  });

  it('writes a busy chat batch after batch under one job, and hands it on past PERSIST_HOLD_MS', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    await send(log, draft(chatId, sender, 'busy 0'));
    // Every INSERT is joined by a new message for the chat (as under load, something arrives
    // while a batch is written), so the chat never goes idle until the arrivals stop.
    const ARRIVALS = 40;
    let arrived = 1;
    let batches = 0;
    const real = createMessageStore(env.pool);
    const insertBatch = async (batch: Message[]) => {
      batches++;
      if (arrived <= ARRIVALS) await log.append(draft(chatId, sender, `busy ${arrived++}`));
      return real.insertBatch(batch);
    };
    let handOns = 0;
    const counting: PersistQueue = { add: async (ids) => ((handOns += ids.length), bull().add(ids)) };
    const worker = await persistWorker(insertBatch, { PERSIST_HOLD_MS: 30 }, undefined, counting);
    try {
      await waitFor(async () => (await stored(chatId)).length === ARRIVALS + 1, 'every message in PostgreSQL');
      await waitFor(
        async () => (await env.redis.exists(log.keys.ticket(chatId), log.keys.pending(chatId))) === 0,
        'the ticket released once idle',
      );
      // One job from the first append, then one per hold period: far fewer than the batches.
      expect(batches).toBeGreaterThanOrEqual(ARRIVALS);
      expect(handOns).toBeGreaterThanOrEqual(1);
      expect(1 + handOns).toBeLessThan(batches / 2);
    } finally {
      await worker.close();
    }
  });

  it('writes a backlog batch after batch, each within PERSIST_BATCH_SIZE, from one job', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    for (let i = 0; i < 35; i++) await send(log, draft(chatId, sender, `backlog ${i}`, `k${i}`));
    expect(await waitingFor(chatId)).toBe(1);

    const batches: number[] = [];
    const worker = await persistWorker(createMessageStore(env.pool).insertBatch, { PERSIST_BATCH_SIZE: 10 }, (size) =>
      batches.push(size),
    );
    // The batch's size is reported once its bookkeeping is done, a moment after its rows are in.
    await waitFor(async () => batches.reduce((a, b) => a + b, 0) === 35, 'the backlog written');
    expect(await stored(chatId)).toEqual(range(1, 35));
    expect(batches).toEqual([10, 10, 10, 5]);
    await waitFor(
      async () => (await env.redis.exists(log.keys.ticket(chatId), log.keys.pending(chatId))) === 0,
      'ticket released',
    );
    await worker.close();
  });

  it('repairs only a chat whose ticket is free, putting lost seqs back into its pending set', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    await send(log, draft(chatId, sender, 'waiting'));
    // A job is on its way: no repair.
    expect(await log.claimForRepair(chatId, [])).toBeNull();
    await env.redis.del(log.keys.ticket(chatId), log.keys.pending(chatId));
    const claim = await log.claimForRepair(chatId, [1]);
    expect(claim).toMatchObject({ chatId });
    expect(await env.redis.zrange(log.keys.pending(chatId), '0', '-1')).toEqual(['1']);
    await log.enqueue([claim!]);
    expect(await waitingFor(chatId)).toBe(2);
  });

  it('answers a repeated clientMsgId with the original, from the list or, once trimmed, with an empty JSON', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    const first = await send(log, draft(chatId, sender, 'original', 'same'));
    const again = await log.append(draft(chatId, sender, 'retried', 'same'));
    expect(again.kind === 'duplicate' && again.json).toBe(first.kind === 'accepted' && first.json);
    // The idempotency key holds the seq only.
    expect(await env.redis.get(log.keys.idempotency(chatId, sender, 'same'))).toBe('1');
    await env.redis.lpop(log.keys.active(chatId)); // as a trim does, once PostgreSQL holds it
    const later = await log.append(draft(chatId, sender, 'retried again', 'same'));
    expect(later).toMatchObject({ kind: 'duplicate', json: '' });
  });
});

describe('the message log: changes to messages', () => {
  const store = () => createMessageStore(env.pool);
  const row = async (chatId: string, seq: number) =>
    (
      await env.pool.query<{ body: string; rev: number; deleted_at: string | null; reactions: unknown }>(
        'SELECT body, rev, deleted_at, reactions FROM messages WHERE chat_id = $1 AND seq = $2',
        [chatId, seq],
      )
    ).rows[0];
  const change = (log: MessageLog, chatId: string, actorId: string, seq: number, c: MessageChange) =>
    log.change({
      chatId,
      actorId,
      seq,
      clientMsgId: null,
      apply: (current) => applyChange(current, c, { actorId, chatCreatorId: null, now: new Date().toISOString() }),
      loadStored: () => store().get(chatId, seq),
      bucket: null,
    });
  /** A change as the api commits it: with its persist job when it claimed the ticket. */
  const commit = async (log: MessageLog, chatId: string, actorId: string, seq: number, c: MessageChange) => {
    const r = await change(log, chatId, actorId, seq, c);
    if (r.kind === 'changed' && r.claim) await log.enqueue([r.claim]);
    return r;
  };

  it('writes an edit that reached a message still waiting for its INSERT, and the later rev wins', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    const sent = await send(log, draft(chatId, sender, 'first draft'));
    expect(sent).toMatchObject({ kind: 'accepted', message: { seq: 1, rev: 1 } });
    const edited = await commit(log, chatId, sender, 1, { kind: 'edit', body: 'final text' });
    expect(edited).toMatchObject({ kind: 'changed', message: { seq: 1, rev: 2, body: 'final text' } });
    // The list holds the change in place: history reads the message as it is now.
    expect((await log.history(chatId, 'after', 0, 10)).jsons.map((j) => JSON.parse(j).body)).toEqual(['final text']);

    await persistWorker(store().insertBatch);
    await waitFor(async () => (await row(chatId, 1))?.rev === 2, 'the edited row in PostgreSQL');
    expect(await row(chatId, 1)).toMatchObject({ body: 'final text', rev: 2 });
    await waitFor(async () => (await env.redis.zcard(log.keys.pendingChanges(chatId))) === 0, 'the change written');
    expect(await env.redis.hlen(log.keys.changed(chatId))).toBe(0);
  });

  it('changes a message only PostgreSQL holds, and recomputes a change that another overtook', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    const members = Array.from({ length: 8 }, () => randomUUID());
    await env.redis.sadd(log.keys.members(chatId), ...members);
    const m: Message = {
      ...draft(chatId, sender, 'old news'),
      seq: 1,
      rev: 1,
    };
    await store().insertBatch([m]);
    await env.redis.set(log.keys.seq(chatId), 1);
    await env.redis.set(log.keys.rev(chatId), 1);

    // Eight members react at once: each one computed from what it read, committed only if
    // nobody came first, else computed again from the newer state.
    const results = await Promise.all(
      members.map((u) => commit(log, chatId, u, 1, { kind: 'react', emoji: '👍', on: true })),
    );
    expect(results.map((r) => r.kind)).toEqual(members.map(() => 'changed'));
    const revs = results.map((r) => (r.kind === 'changed' ? r.message.rev : 0)).sort((a, b) => a - b);
    expect(revs).toEqual(range(2, 9));
    // Reacting again changes nothing and takes no rev.
    expect((await change(log, chatId, members[0]!, 1, { kind: 'react', emoji: '👍', on: true })).kind).toBe(
      'unchanged',
    );

    await persistWorker(store().insertBatch);
    await waitFor(async () => (await row(chatId, 1))?.rev === 9, 'the last reaction in PostgreSQL');
    const final = await row(chatId, 1);
    expect(final?.reactions).toEqual([{ emoji: '👍', count: 8, userIds: expect.arrayContaining(members) }]);

    // A non-member is refused before anything is read; a missing message is not found.
    expect((await change(log, chatId, randomUUID(), 1, { kind: 'delete' })).kind).toBe('forbidden');
    expect((await change(log, chatId, sender, 99, { kind: 'delete' })).kind).toBe('not-found');
  });

  it('answers changesSince from its index back to its floor, and says when PostgreSQL must be read too', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    // Seeded counters: the index holds every change after the seeded rev.
    await env.redis.del(log.keys.seq(chatId), log.keys.rev(chatId));
    await log.seedSeq(chatId, { seq: 0, rev: 0 });
    for (let i = 1; i <= 3; i++) await send(log, draft(chatId, sender, `m${i}`));
    await commit(log, chatId, sender, 1, { kind: 'edit', body: 'm1 again' });
    await commit(log, chatId, sender, 3, { kind: 'delete' });
    const all = await log.changesSince(chatId, 0, 3, 100);
    expect(all).toMatchObject({ complete: true, rev: 5 });
    expect(all.changed.map((c) => [c.seq, JSON.parse(c.json).rev])).toEqual([
      [1, 4],
      [3, 5],
    ]);
    // Up to seq 2 only, and after rev 4 only.
    expect((await log.changesSince(chatId, 0, 2, 100)).changed.map((c) => c.seq)).toEqual([1]);
    expect((await log.changesSince(chatId, 4, 3, 100)).changed.map((c) => c.seq)).toEqual([3]);
    // A floor above the rev asked for (the index was trimmed, or PostgreSQL took changes in degraded mode).
    await log.raiseSeq(chatId, { seq: 3, rev: 9 });
    expect(await log.changesSince(chatId, 4, 3, 100)).toMatchObject({ complete: false, rev: 9 });
  });

  it('announces what PostgreSQL holds only once it holds it', async () => {
    const log = await messageLog();
    const sender = randomUUID();
    const chatId = await chatWith(log, sender);
    const sub = createRedis(env.config, 'subscriber', 'test-persisted');
    closers.push(() => sub.quit());
    const seen: { seq: number; stored: number[] }[] = [];
    await sub.ssubscribe(log.keys.channel(chatId));
    sub.on('smessage', (_channel, payload: string) => {
      const [kind, seq] = payload.split(' ');
      if (kind !== 'p') return;
      // What PostgreSQL holds the moment the announcement arrives.
      void stored(chatId).then((rows) => seen.push({ seq: Number(seq), stored: rows }));
    });
    for (let i = 1; i <= 5; i++) await send(log, draft(chatId, sender, `p${i}`));
    await persistWorker(store().insertBatch);
    await waitFor(async () => seen.some((s) => s.seq === 5), 'persisted up to seq 5');
    for (const s of seen) expect(s.stored).toEqual(expect.arrayContaining(range(1, s.seq)));
  });
});
