import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogKeys } from '../../src/message-log/keys.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { acked, cid, messagesOf, storedMessages, type WireMessage } from '../helpers/lifecycle.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * `sync` with {seq, rev} (docs/protocol.md, WebSocket; "Message lifecycle"): a client that saw a
 * chat up to seq S and rev R, offline while 20 of those messages were changed and 30 new ones were
 * sent, gets exactly the 30 as `message` frames in seq order and the 20 as `message.updated`
 * frames, then `synced` with the chat's rev. Once with everything still in Redis, once with the
 * old messages (and most new ones) only in PostgreSQL: an active list of 5, trimmed by the worker.
 */
const OLD = 25;
const CHANGED = 20;
const NEW = 30;

interface World {
  env: TestEnv;
  procs: RunningProcess[];
  http: ApiClient;
}

async function startWorld(overrides: Record<string, string> = {}): Promise<World> {
  const env = await createTestEnv(overrides);
  const procs = await Promise.all([startApiProcess(env.env), startWorkerProcess(env.env)]);
  return { env, procs, http: new ApiClient(procs[0]!.url) };
}

async function stopWorld(w: World | undefined): Promise<void> {
  if (!w) return;
  await Promise.all(w.procs.map((p) => p.kill('SIGTERM')));
  await w.env.cleanup();
}

/** The frames a socket got from index `from` up to and including the first `synced`. */
async function syncFrom(socket: TestSocket, chats: Record<string, unknown>): Promise<Frame[]> {
  const from = socket.frames.length;
  socket.send({ type: 'sync', chats });
  await socket.next((f) => f.type === 'synced', 'synced', from, 30_000);
  const frames = socket.frames.slice(from);
  return frames.slice(0, frames.findIndex((f) => f.type === 'synced') + 1);
}

const ofChat = (frames: Frame[], type: string, chatId: string) =>
  frames
    .filter((f) => f.type === type)
    .map((f) => f.message as WireMessage)
    .filter((m) => m.chatId === chatId);

/** What a replayed message must show: its state after its last change. */
const state = (m: WireMessage) => ({
  id: m.id,
  seq: m.seq,
  body: m.body,
  replyTo: m.replyTo,
  editedAt: m.editedAt,
  deletedAt: m.deletedAt,
  reactions: m.reactions,
  rev: m.rev,
});

interface Scenario {
  chatId: string;
  author: TestUser;
  readers: TestUser[];
  /** What each reader saw before it went away. */
  seenSeq: number;
  seenRev: number;
  /** Every message's last acked state, by seq. */
  now: Map<number, WireMessage>;
  changedSeqs: number[];
  newSeqs: number[];
  lastRev: number;
}

/**
 * The author sends OLD messages; each reader syncs from nothing, notes seq and rev, and goes away.
 * `beforeChanges` runs then (e.g. to wait for the worker to trim). The author changes CHANGED of
 * the old messages (some twice, edits, reactions and deletes) and sends NEW ones, two of which it
 * then edits (those reach a reader once, as `message`).
 */
async function runScenario(
  w: World,
  readerCount: number,
  beforeChanges: (chatId: string, now: Map<number, WireMessage>) => Promise<void>,
) {
  const author = await w.http.newUser('author');
  const readers = await Promise.all(Array.from({ length: readerCount }, () => w.http.newUser('reader')));
  const chatId = (await w.http.newChat(author, readers, 'offline')).id;
  const as = await connectClient(w.procs[0]!.url, author.token);
  const now = new Map<number, WireMessage>();
  const keep = (m: WireMessage) => now.set(m.seq, m);
  for (let i = 0; i < OLD; i++)
    keep(await acked(as, { type: 'send', chatId, body: `old ${i}`, clientMsgId: cid('old') }));

  let seenSeq = 0;
  let seenRev = 0;
  for (const reader of readers) {
    const rs = await connectClient(w.procs[0]!.url, reader.token);
    const frames = await syncFrom(rs, { [chatId]: { seq: 0, rev: 0 } });
    const got = ofChat(frames, 'message', chatId);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: OLD }, (_, k) => k + 1));
    expect(ofChat(frames, 'message.updated', chatId)).toEqual([]);
    seenSeq = got.at(-1)!.seq;
    seenRev = Math.max(...got.map((m) => m.rev));
    // `synced` carries the chat's rev: the rev of its last change, the last message here.
    expect(frames.at(-1)).toMatchObject({ type: 'synced', revs: { [chatId]: seenRev } });
    expect(seenRev).toBe(now.get(OLD)!.rev);
    await rs.close();
  }

  await beforeChanges(chatId, new Map(now));

  // 20 of the old messages change while the readers are away: seqs 1..20.
  const changedSeqs = Array.from({ length: CHANGED }, (_, k) => k + 1);
  for (const [k, seq] of changedSeqs.entries()) {
    const op = k % 4;
    if (op === 0 || op === 1)
      keep(await acked(as, { type: 'edit', chatId, seq, body: `old ${seq - 1}, edited`, clientMsgId: cid('e') }));
    if (op === 1 || op === 2)
      keep(await acked(as, { type: 'react', chatId, seq, emoji: '🔥', on: true, clientMsgId: cid('r') }));
    if (op === 3) keep(await acked(as, { type: 'delete', chatId, seq, clientMsgId: cid('d') }));
    if (k % 5 === 0 && op !== 3)
      keep(await acked(as, { type: 'edit', chatId, seq, body: `old ${seq - 1}, edited again`, clientMsgId: cid('e') }));
  }
  const newSeqs: number[] = [];
  for (let i = 0; i < NEW; i++) {
    const m = await acked(as, { type: 'send', chatId, body: `new ${i}`, clientMsgId: cid('new') });
    keep(m);
    newSeqs.push(m.seq);
  }
  // Sent and changed while the readers were away.
  for (const seq of [newSeqs[4]!, newSeqs[17]!])
    keep(await acked(as, { type: 'edit', chatId, seq, body: `new, edited`, clientMsgId: cid('ne') }));
  keep(await acked(as, { type: 'react', chatId, seq: newSeqs[17]!, emoji: '💯', on: true, clientMsgId: cid('nr') }));
  await as.close();

  const lastRev = Math.max(...[...now.values()].map((m) => m.rev));
  return { chatId, author, readers, seenSeq, seenRev, now, changedSeqs, newSeqs, lastRev } satisfies Scenario;
}

/** A reader comes back and syncs with {seq, rev}: exactly the new messages, the changed old ones, synced. */
async function expectReplay(w: World, s: Scenario, reader: TestUser) {
  const rs = await connectClient(w.procs[0]!.url, reader.token);
  const frames = await syncFrom(rs, { [s.chatId]: { seq: s.seenSeq, rev: s.seenRev } });
  await rs.close();

  const messages = ofChat(frames, 'message', s.chatId);
  expect(messages.map((m) => m.seq)).toEqual(s.newSeqs);
  expect(s.newSeqs).toEqual(Array.from({ length: NEW }, (_, k) => s.seenSeq + 1 + k));
  // Each new message once, in its current state (two were edited, one reacted to, meanwhile).
  expect(messages.map(state)).toEqual(s.newSeqs.map((seq) => state(s.now.get(seq)!)));

  const updated = ofChat(frames, 'message.updated', s.chatId);
  expect(updated.map((m) => m.seq).sort((x, y) => x - y)).toEqual(s.changedSeqs);
  for (const m of updated) expect(state(m), `seq ${m.seq}`).toEqual(state(s.now.get(m.seq)!));
  // Nothing else of the chat before synced, and synced carries its rev.
  expect(frames.filter((f) => f.type === 'error')).toEqual([]);
  expect(frames.at(-1)).toMatchObject({ type: 'synced', revs: { [s.chatId]: s.lastRev } });
}

describe('sync with {seq, rev}, everything still in Redis', () => {
  let w: World;
  let s: Scenario;
  beforeAll(async () => {
    w = await startWorld();
    s = await runScenario(w, 2, async () => undefined);
  });
  afterAll(() => stopWorld(w));

  it('replays exactly the 30 new messages in seq order and the 20 changed ones, then synced with the rev', async () => {
    // Nothing was trimmed: every message is in the active list.
    expect(await w.env.redis.llen(createLogKeys(w.env.env.REDIS_KEY_PREFIX!).active(s.chatId))).toBe(OLD + NEW);
    await expectReplay(w, s, s.readers[0]!);
  });

  it('the plain number form still replays the new messages only (in their current state), then synced', async () => {
    const rs = await connectClient(w.procs[0]!.url, s.readers[1]!.token);
    const frames = await syncFrom(rs, { [s.chatId]: s.seenSeq });
    await rs.close();
    const messages = ofChat(frames, 'message', s.chatId);
    expect(messages.map((m) => m.seq)).toEqual(s.newSeqs);
    expect(messages.map(state)).toEqual(s.newSeqs.map((seq) => state(s.now.get(seq)!)));
    expect(ofChat(frames, 'message.updated', s.chatId)).toEqual([]);
    expect(frames.at(-1)).toMatchObject({ type: 'synced', revs: { [s.chatId]: s.lastRev } });
  });

  it('a live client gets each change once as message.updated, and a sync from the latest rev replays nothing', async () => {
    const reader = s.readers[0]!;
    const rs = await connectClient(w.procs[0]!.url, reader.token);
    const frames = await syncFrom(rs, { [s.chatId]: { seq: s.newSeqs.at(-1)!, rev: s.lastRev } });
    expect(frames.filter((f) => f.type !== 'synced' && f.type !== 'presence')).toEqual([]);
    expect(frames.at(-1)).toMatchObject({ type: 'synced', revs: { [s.chatId]: s.lastRev } });
    const as = await connectClient(w.procs[0]!.url, s.author.token);
    const edit = await acked(as, {
      type: 'edit',
      chatId: s.chatId,
      seq: OLD,
      body: 'edited while you watch',
      clientMsgId: cid('live'),
    });
    const got = await rs.next(
      (f) => f.type === 'message.updated' && (f.message as WireMessage).rev === edit.rev,
      'the live update',
    );
    expect(state(got.message as WireMessage)).toEqual(state(edit));
    expect(messagesOf(rs, s.chatId)).toEqual([]);
    await Promise.all([as.close(), rs.close()]);
  });
});

describe('sync with {seq, rev}, the old messages only in PostgreSQL (ACTIVE_LIST_MAX=5)', () => {
  const LIST_MAX = 5;
  let w: World;
  let s: Scenario;
  let activeKey: (chatId: string) => string;
  /** Waits until PostgreSQL holds every message at its last acked rev and the list was trimmed. */
  const settled = async (chatId: string, expected: Map<number, WireMessage>) =>
    waitFor(
      async () => {
        const rows = await storedMessages(w.env.pool, chatId);
        const len = await w.env.redis.llen(activeKey(chatId));
        return (
          rows.length === expected.size &&
          rows.every((r) => expected.get(r.seq)?.rev === r.rev) &&
          len <= LIST_MAX &&
          len > 0
        );
      },
      'the worker to write everything and trim the active list',
      { timeoutMs: 30_000 },
    );
  const listedSeqs = async (chatId: string) =>
    (await w.env.redis.lrange(activeKey(chatId), 0, -1)).map((j) => (JSON.parse(j) as WireMessage).seq);

  beforeAll(async () => {
    w = await startWorld({ ACTIVE_LIST_MAX: String(LIST_MAX) });
    activeKey = createLogKeys(w.env.env.REDIS_KEY_PREFIX!).active;
    s = await runScenario(w, 2, async (chatId, old) => {
      // The readers saw the old messages; before anything changes, they are only in PostgreSQL
      // (but the last few). Then the worker stops: the changes and the new messages stay in Redis.
      await settled(chatId, old);
      await w.procs[1]!.kill('SIGTERM');
    });
  });
  afterAll(() => stopWorld(w));

  it('replays exactly those frames while the changes are not yet written (worker stopped)', async () => {
    const listed = await listedSeqs(s.chatId);
    expect(
      listed.filter((seq) => s.changedSeqs.includes(seq)),
      'changed messages still in the list',
    ).toEqual([]);
    expect(await storedMessages(w.env.pool, s.chatId)).toHaveLength(OLD);
    await expectReplay(w, s, s.readers[0]!);
  });

  it('and once the worker wrote every change and trimmed the list again (everything read from PostgreSQL)', async () => {
    w.procs[1] = await startWorkerProcess(w.env.env);
    await settled(s.chatId, s.now);
    expect((await listedSeqs(s.chatId)).every((seq) => seq > s.newSeqs.at(-1)! - LIST_MAX)).toBe(true);
    await expectReplay(w, s, s.readers[1]!);
  });
});
