import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import {
  acked,
  changes,
  cid,
  heldUpTo,
  messagesOf,
  request,
  storedMessage,
  storedMessages,
  updatesOf,
  watchPersisted,
  type WireMessage,
} from '../helpers/lifecycle.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * The message lifecycle (docs/protocol.md "Message lifecycle", "Durability") with real processes:
 * two api processes and a worker. A creates the chat, B sends, C is a member, D is not; every
 * member has a connection on each api. One set of processes for the whole file: the last
 * describe stops the worker and starts another.
 */
describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  let api1: RunningProcess;
  let api2: RunningProcess;
  let worker: RunningProcess;
  const procs: RunningProcess[] = [];
  let h1: ApiClient;
  let h2: ApiClient;
  let c1: ReturnType<typeof changes>;
  let c2: ReturnType<typeof changes>;
  let A: TestUser;
  let B: TestUser;
  let C: TestUser;
  let D: TestUser;
  let chatId: string;
  /** Every member's connection on both apis. */
  let a1: TestSocket, a2: TestSocket, b1: TestSocket, b2: TestSocket, s1: TestSocket, s2: TestSocket;
  /** The non-member's. */
  let d1: TestSocket, d2: TestSocket;
  let members: TestSocket[];
  const persistedWatches: ReturnType<typeof watchPersisted>[] = [];

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
    [api1, api2, worker] = await Promise.all([
      startApiProcess(env.env),
      startApiProcess(env.env),
      startWorkerProcess(env.env),
    ]);
    procs.push(api1, api2, worker);
    h1 = new ApiClient(api1.url);
    h2 = new ApiClient(api2.url);
    c1 = changes(h1);
    c2 = changes(h2);
    [A, B, C, D] = await Promise.all([h1.newUser('a'), h2.newUser('b'), h1.newUser('c'), h2.newUser('d')]);
    chatId = (await h1.newChat(A, [B, C], 'lifecycle')).id;
    [a1, a2, b1, b2, s1, s2, d1, d2] = await Promise.all([
      connectClient(api1.url, A.token),
      connectClient(api2.url, A.token),
      connectClient(api1.url, B.token),
      connectClient(api2.url, B.token),
      connectClient(api1.url, C.token),
      connectClient(api2.url, C.token),
      connectClient(api1.url, D.token),
      connectClient(api2.url, D.token),
    ]);
    members = [a1, a2, b1, b2, s1, s2];
    for (const s of [...members, d1, d2]) persistedWatches.push(watchPersisted(s, env.pool));
  });
  afterAll(async () => {
    await Promise.all([a1, a2, b1, b2, s1, s2, d1, d2].map((s) => s?.close()));
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
    await env?.cleanup();
  });

  /** B sends a message over WS on api 1; resolves once every member's connection has it. */
  async function sendByB(body: string, extra: Record<string, unknown> = {}): Promise<WireMessage> {
    const m = await acked(b1, { type: 'send', chatId, body, clientMsgId: cid('send'), ...extra });
    await Promise.all(
      members.map((s) => s.until(() => messagesOf(s, chatId).some((x) => x.seq === m.seq), 'the send')),
    );
    return m;
  }

  /** Resolves once every member's connection got the `message.updated` of `seq` with `rev`. */
  const everyoneGot = (seq: number, rev: number) =>
    Promise.all(
      members.map((s) =>
        s.until(() => updatesOf(s, chatId, seq).some((m) => m.rev === rev), `rev ${rev} of seq ${seq}`),
      ),
    );

  /**
   * A change after everything else, fanned out on the same path: once every connection has it, any
   * further frame for `seq` would have arrived too. C reacts to a fresh message of its own.
   */
  async function marker(): Promise<void> {
    const m = await acked(s1, { type: 'send', chatId, body: 'marker', clientMsgId: cid('marker') });
    const r = await acked(s1, { type: 'react', chatId, seq: m.seq, emoji: '✅', on: true, clientMsgId: cid('mr') });
    await everyoneGot(m.seq, r.rev);
  }

  /** What a stored message and the wire must agree on. */
  const lifecycleFields = (m: WireMessage) => ({
    id: m.id,
    chatId: m.chatId,
    seq: m.seq,
    senderId: m.senderId,
    body: m.body,
    clientMsgId: m.clientMsgId,
    createdAt: m.createdAt,
    replyTo: m.replyTo,
    editedAt: m.editedAt,
    deletedAt: m.deletedAt,
    reactions: m.reactions,
    rev: m.rev,
  });

  /** Waits until PostgreSQL holds the message at `rev` (the worker wrote its last change). */
  const storedAt = (seq: number, rev: number) =>
    waitFor(async () => {
      const row = await storedMessage(env.pool, chatId, seq);
      return row && row.rev === rev ? row : null;
    }, `PostgreSQL to hold seq ${seq} at rev ${rev}`);

  describe('a message edited on one api, reacted to on the other, deleted by the chat creator', () => {
    it('reaches every member connection on both apis as message.updated frames in rev order, ending in a tombstone', async () => {
      const sent = await sendByB('first draft');
      expect(sent).toMatchObject({
        ackState: 'accepted',
        replyTo: null,
        editedAt: null,
        deletedAt: null,
        reactions: [],
        rev: expect.any(Number),
      });
      const seq = sent.seq;

      // 1. B edits over WS on api 1.
      const edit = await acked(b1, { type: 'edit', chatId, seq, body: 'second draft', clientMsgId: cid('edit') });
      expect(edit).toMatchObject({ ackState: 'accepted', seq, body: 'second draft', editedAt: expect.any(String) });
      expect(edit.rev).toBeGreaterThan(sent.rev);
      // 2. C reacts over WS on api 2.
      const react = await acked(s2, { type: 'react', chatId, seq, emoji: '👍', on: true, clientMsgId: cid('react') });
      expect(react).toMatchObject({
        ackState: 'accepted',
        body: 'second draft',
        reactions: [{ emoji: '👍', count: 1, userIds: [C.user.id] }],
      });
      expect(react.rev).toBeGreaterThan(edit.rev);
      // 3. B edits over HTTP on api 2.
      const patch = await c2.edit(B.token, chatId, seq, 'final text');
      expect(patch.status).toBe(200);
      const patched = patch.body.message as WireMessage;
      expect(patched).toMatchObject({ seq, body: 'final text', reactions: [{ emoji: '👍', count: 1 }] });
      expect(patched.rev).toBeGreaterThan(react.rev);
      // 4. A reacts over HTTP on api 1.
      expect((await c1.react(A.token, chatId, seq, '🎉')).status).toBe(204);
      // Its rev is not in a 204: read it from the frame.
      await b1.until(() => updatesOf(b1, chatId, seq).length >= 4, "A's reaction");
      const reacted = updatesOf(b1, chatId, seq)[3]!;
      // 5. A, the chat's creator, deletes B's message over WS on api 2.
      const del = await acked(a2, { type: 'delete', chatId, seq, clientMsgId: cid('delete') });
      expect(del).toMatchObject({ ackState: 'accepted', seq, body: '', deletedAt: expect.any(String), reactions: [] });
      await everyoneGot(seq, del.rev);
      // Its author cannot bring it back.
      const late = await c1.edit(B.token, chatId, seq, 'undo');
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('conflict');
      await marker();

      for (const [i, s] of members.entries()) {
        const got = updatesOf(s, chatId, seq);
        expect(
          got.map((m) => m.rev),
          `connection ${i}`,
        ).toEqual([edit.rev, react.rev, patched.rev, reacted.rev, del.rev]);
        expect(got.map((m) => m.body)).toEqual(['second draft', 'second draft', 'final text', 'final text', '']);
        expect(got[3]!.reactions).toEqual([
          { emoji: '👍', count: 1, userIds: [C.user.id] },
          { emoji: '🎉', count: 1, userIds: [A.user.id] },
        ]);
        expect(got[4]).toMatchObject({ id: sent.id, seq, senderId: B.user.id, body: '', reactions: [] });
        expect(got[4]!.deletedAt).toEqual(expect.any(String));
        expect(s.of('error')).toEqual([]);
      }
      for (const s of [d1, d2]) {
        expect(s.frames.filter((f) => JSON.stringify(f).includes(chatId))).toEqual([]);
      }

      // History on both apis: the message as it is now.
      const final = updatesOf(b1, chatId, seq)[4]!;
      for (const [c, u] of [
        [c1, C],
        [c2, B],
      ] as const) {
        expect(await c.historyOf(u.token, chatId, seq)).toMatchObject({
          id: sent.id,
          body: '',
          deletedAt: final.deletedAt,
          reactions: [],
          rev: del.rev,
        });
      }
      // PostgreSQL, once the worker wrote the last change; and history still shows it (no stale copy wins).
      const row = await storedAt(seq, del.rev);
      expect(row).toMatchObject({
        id: sent.id,
        senderId: B.user.id,
        body: '',
        reactions: [],
        deletedAt: final.deletedAt,
      });
      expect(await c2.historyOf(A.token, chatId, seq)).toMatchObject({ body: '', reactions: [], rev: del.rev });
    });

    it('refuses to edit or react to a tombstone (409 conflict), over HTTP and WS', async () => {
      const sent = await sendByB('to be deleted');
      const del = await c1.remove(B.token, chatId, sent.seq);
      expect(del.status).toBe(204);
      await b1.until(() => updatesOf(b1, chatId, sent.seq).some((m) => m.deletedAt !== null), 'the tombstone');
      const tomb = updatesOf(b1, chatId, sent.seq).at(-1)!;

      const patch = await c2.edit(B.token, chatId, sent.seq, 'back from the dead');
      expect(patch.status).toBe(409);
      expect(patch.body.error.code).toBe('conflict');
      const wsEdit = await request(b2, {
        type: 'edit',
        chatId,
        seq: sent.seq,
        body: 'back from the dead',
        clientMsgId: cid('tomb-edit'),
      });
      expect(wsEdit).toMatchObject({ type: 'error', code: 'conflict' });
      const put = await c1.react(C.token, chatId, sent.seq, '👍');
      expect(put.status).toBe(409);
      expect(put.body.error.code).toBe('conflict');
      const wsReact = await request(s2, {
        type: 'react',
        chatId,
        seq: sent.seq,
        emoji: '👍',
        on: true,
        clientMsgId: cid('tomb-react'),
      });
      expect(wsReact).toMatchObject({ type: 'error', code: 'conflict' });

      await marker();
      for (const s of members) expect(updatesOf(s, chatId, sent.seq).map((m) => m.rev)).toEqual([tomb.rev]);
      expect(await c1.historyOf(C.token, chatId, sent.seq)).toMatchObject({ body: '', rev: tomb.rev, reactions: [] });
      expect(await storedAt(sent.seq, tomb.rev)).toMatchObject({ body: '', reactions: [] });
    });

    it('gives a non-member 403 on every change route, and another member 403 on editing or deleting', async () => {
      const sent = await sendByB('mine');
      const forbidden = async (
        reply: Promise<{ status: number; body: { error?: { code: string } } }>,
        what: string,
      ) => {
        const r = await reply;
        expect(r.status, what).toBe(403);
        expect(r.body.error?.code, what).toBe('forbidden');
      };
      await forbidden(c1.edit(D.token, chatId, sent.seq, 'hijacked'), 'D PATCH');
      await forbidden(c2.remove(D.token, chatId, sent.seq), 'D DELETE');
      await forbidden(c1.react(D.token, chatId, sent.seq, '👎'), 'D PUT reaction');
      await forbidden(c2.react(D.token, chatId, sent.seq, '👎', false), 'D DELETE reaction');
      expect(
        await request(d1, { type: 'edit', chatId, seq: sent.seq, body: 'x', clientMsgId: cid('d') }),
      ).toMatchObject({
        type: 'error',
        code: 'forbidden',
      });
      expect(
        await request(d2, { type: 'react', chatId, seq: sent.seq, emoji: '👎', on: true, clientMsgId: cid('d') }),
      ).toMatchObject({ type: 'error', code: 'forbidden' });

      // C is a member but neither the sender nor the chat's creator.
      await forbidden(c2.edit(C.token, chatId, sent.seq, 'not yours'), 'C PATCH');
      await forbidden(c1.remove(C.token, chatId, sent.seq), 'C DELETE');
      expect(
        await request(s1, { type: 'edit', chatId, seq: sent.seq, body: 'x', clientMsgId: cid('c') }),
      ).toMatchObject({
        type: 'error',
        code: 'forbidden',
      });
      expect(await request(s2, { type: 'delete', chatId, seq: sent.seq, clientMsgId: cid('c') })).toMatchObject({
        type: 'error',
        code: 'forbidden',
      });
      // Not even the creator may edit someone else's message.
      await forbidden(c1.edit(A.token, chatId, sent.seq, 'creator edit'), 'A PATCH');

      await marker();
      for (const s of members) expect(updatesOf(s, chatId, sent.seq)).toEqual([]);
      expect(await c1.historyOf(B.token, chatId, sent.seq)).toMatchObject({
        body: 'mine',
        editedAt: null,
        reactions: [],
        rev: sent.rev,
      });
      // Unknown messages and bad emoji are refused too.
      const unknown = await c1.edit(B.token, chatId, 1_000_000, 'nothing there');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('not_found');
      const longEmoji = await c1.react(C.token, chatId, sent.seq, 'x'.repeat(33));
      expect(longEmoji.status).toBe(400);
      expect(longEmoji.body.error.code).toBe('validation_failed');
    });
  });

  describe('replyTo', () => {
    it('is kept on WS and HTTP sends, and a seq the chat has not issued is validation_failed', async () => {
      const original = await sendByB('the question');
      const wsReply = await acked(s1, {
        type: 'send',
        chatId,
        body: 'an answer',
        clientMsgId: cid('reply'),
        replyTo: original.seq,
      });
      expect(wsReply).toMatchObject({ ackState: 'accepted', replyTo: original.seq });
      const httpReply = await changes(h2).sendReply(A.token, chatId, 'another answer', original.seq, cid('reply'));
      expect(httpReply.status).toBe(201);
      expect(httpReply.body.message.replyTo).toBe(original.seq);
      const plain = await h1.send(C.token, chatId, 'no reply');
      expect(plain.body.message.replyTo).toBe(null);

      for (const s of members) {
        await s.until(() => messagesOf(s, chatId).some((m) => m.seq === plain.body.message.seq), 'the plain send');
        const bySeq = new Map(messagesOf(s, chatId).map((m) => [m.seq, m]));
        expect(bySeq.get(wsReply.seq)?.replyTo).toBe(original.seq);
        expect(bySeq.get(httpReply.body.message.seq)?.replyTo).toBe(original.seq);
      }
      expect((await c2.historyOf(B.token, chatId, wsReply.seq))?.replyTo).toBe(original.seq);

      const lastSeq = plain.body.message.seq as number;
      for (const bad of [lastSeq + 1, lastSeq + 1000, 0, -1, 'one', 1.5]) {
        const r = await c1.sendReply(B.token, chatId, 'to nothing', bad);
        expect(r.status, `replyTo ${JSON.stringify(bad)}`).toBe(400);
        expect(r.body.error.code).toBe('validation_failed');
      }
      const ws = await request(b2, {
        type: 'send',
        chatId,
        body: 'to nothing',
        clientMsgId: cid('bad'),
        replyTo: lastSeq + 1000,
      });
      expect(ws).toMatchObject({ type: 'error', code: 'validation_failed' });
      // Nothing was stored for the refused sends: the next message takes the next seq.
      const next = await h2.send(B.token, chatId, 'after the refusals');
      expect(next.body.message.seq).toBe(lastSeq + 1);

      await storedAt(next.body.message.seq, next.body.message.rev);
      const rows = new Map((await storedMessages(env.pool, chatId)).map((r) => [r.seq, r]));
      expect(rows.get(wsReply.seq)?.replyTo).toBe(original.seq);
      expect(rows.get(httpReply.body.message.seq)?.replyTo).toBe(original.seq);
      expect(rows.get(plain.body.message.seq)?.replyTo).toBe(null);
    });
  });

  describe('clientMsgId on an edit', () => {
    it('makes a repeated edit (on either api, even after a later edit) take one rev only', async () => {
      const sent = await sendByB('v0');
      const frame = { type: 'edit', chatId, seq: sent.seq, body: 'v1', clientMsgId: cid('edit-once') };
      // The same edit twice at once, on both of B's connections (one per api).
      const [first, again] = await Promise.all([acked(b1, frame), acked(b2, frame)]);
      expect(first).toMatchObject({ ackState: 'accepted', body: 'v1' });
      expect(again).toMatchObject({ ackState: 'accepted', body: 'v1', rev: first.rev });
      await marker();
      for (const s of members) expect(updatesOf(s, chatId, sent.seq).map((m) => m.rev)).toEqual([first.rev]);

      // A later edit, then the first one retried: the retry changes nothing.
      const second = await acked(b1, { type: 'edit', chatId, seq: sent.seq, body: 'v2', clientMsgId: cid('edit') });
      const retry = await request(b2, frame);
      expect(retry.type).toBe('ack');
      await marker();
      for (const s of members)
        expect(updatesOf(s, chatId, sent.seq).map((m) => m.rev)).toEqual([first.rev, second.rev]);
      expect(await c1.historyOf(C.token, chatId, sent.seq)).toMatchObject({ body: 'v2', rev: second.rev });
      expect(await storedAt(sent.seq, second.rev)).toMatchObject({ body: 'v2' });
    });
  });

  describe('persisted frames and persistedSeq', () => {
    it('announce to every member only what PostgreSQL holds, and chats carry persistedSeq', async () => {
      const chat = await h1.newChat(A, [B, C], 'persisted');
      const fresh = await c2.chat(B.token, chat.id);
      expect(fresh.body.chat).toMatchObject({ lastSeq: 0, persistedSeq: 0 });
      const listed = (await c1.chatList(C.token)).body.chats.find((c: { id: string }) => c.id === chat.id);
      expect(listed).toMatchObject({ persistedSeq: 0 });

      // Connections opened after the chat exists: A and C on api 1, B on api 2; D on both.
      const socks = await Promise.all([
        connectClient(api1.url, A.token),
        connectClient(api2.url, B.token),
        connectClient(api1.url, C.token),
      ]);
      const outsiders = await Promise.all([connectClient(api1.url, D.token), connectClient(api2.url, D.token)]);
      const watches = [...socks, ...outsiders].map((s) => watchPersisted(s, env.pool));

      const N = 40;
      const seen: { persistedSeq: number; held: number }[] = [];
      for (let i = 0; i < N; i++) {
        const [http, user] = i % 2 ? [h1, C] : [h2, B];
        const r = await http.send(user.token, chat.id, `p${i}`, `p${i}`);
        expect(r.status).toBe(201);
        if (i % 4 === 0) {
          // Read persistedSeq, then PostgreSQL: what it holds only grows, so it can never be behind.
          const got = (await changes(i % 8 ? h1 : h2).chat(A.token, chat.id)).body.chat.persistedSeq as number;
          seen.push({ persistedSeq: got, held: await heldUpTo(env.pool, chat.id, got) });
        }
      }
      for (const s of seen) expect(s.held, `persistedSeq ${s.persistedSeq}`).toBe(s.persistedSeq);

      await Promise.all(
        socks.map((s) =>
          s.until(
            (fs) => fs.some((f) => f.type === 'persisted' && f.chatId === chat.id && f.seq === N),
            'persisted up to the last seq',
          ),
        ),
      );
      for (const [i, s] of socks.entries()) {
        const frames = s.of('persisted').filter((f) => f.chatId === chat.id);
        expect(frames[0], `connection ${i}`).toMatchObject({
          type: 'persisted',
          chatId: chat.id,
          seq: expect.any(Number),
        });
        const seqs = frames.map((f) => f.seq as number);
        expect(seqs, `connection ${i}: never backwards`).toEqual([...seqs].sort((x, y) => x - y));
        expect(seqs.at(-1)).toBe(N);
      }
      const checks = (await Promise.all(watches.map((w) => w.checks()))).flat().filter((c) => c.chatId === chat.id);
      expect(checks.length).toBeGreaterThanOrEqual(socks.length);
      for (const c of checks) expect(c.held, `persisted ${c.seq} arrived`).toBe(c.seq);
      for (const s of outsiders) expect(s.of('persisted').filter((f) => f.chatId === chat.id)).toEqual([]);

      // Once PostgreSQL holds them all, the chat says so (on either api, in the chat and the list).
      await waitFor(
        async () => (await c2.chat(C.token, chat.id)).body.chat.persistedSeq === N,
        'persistedSeq to reach the last seq',
      );
      expect((await c1.chat(A.token, chat.id)).body.chat).toMatchObject({ lastSeq: N, persistedSeq: N });
      const inList = (await c2.chatList(B.token)).body.chats.find((c: { id: string }) => c.id === chat.id);
      expect(inList).toMatchObject({ persistedSeq: N });
      await Promise.all([...socks, ...outsiders].map((s) => s.close()));
    });
  });

  describe('changes that reach a message before the worker wrote it', () => {
    it('are all in the row the worker finally writes (worker stopped meanwhile)', async () => {
      await worker.kill('SIGTERM');
      const chat = await h1.newChat(A, [B, C], 'no worker');
      const [bs, as] = await Promise.all([connectClient(api1.url, B.token), connectClient(api2.url, A.token)]);

      const m1 = await acked(bs, { type: 'send', chatId: chat.id, body: 'draft', clientMsgId: cid('nw') });
      const m2 = await acked(bs, { type: 'send', chatId: chat.id, body: 'regret', clientMsgId: cid('nw') });
      const m3 = await acked(bs, { type: 'send', chatId: chat.id, body: 'untouched', clientMsgId: cid('nw') });
      const e1 = await acked(bs, {
        type: 'edit',
        chatId: chat.id,
        seq: m1.seq,
        body: 'edited',
        clientMsgId: cid('nw'),
      });
      expect(e1).toMatchObject({ ackState: 'accepted', body: 'edited' });
      expect((await c2.react(C.token, chat.id, m1.seq, '👀')).status).toBe(204);
      const e2 = await c2.edit(B.token, chat.id, m1.seq, 'edited twice');
      expect(e2.status).toBe(200);
      const d2 = await acked(as, { type: 'delete', chatId: chat.id, seq: m2.seq, clientMsgId: cid('nw') });
      expect(d2).toMatchObject({ ackState: 'accepted', body: '', deletedAt: expect.any(String) });

      // Nothing of the chat is in PostgreSQL yet: every change above came before its INSERT.
      expect(await storedMessages(env.pool, chat.id)).toEqual([]);
      expect((await c1.chat(A.token, chat.id)).body.chat).toMatchObject({ lastSeq: 3, persistedSeq: 0 });
      const history = await h1.history(C.token, chat.id, 'after=0');
      const now = history.body.messages as unknown as WireMessage[];
      expect(now.map((m) => m.body)).toEqual(['edited twice', '', 'untouched']);
      expect(now[0]).toMatchObject({
        rev: e2.body.message.rev,
        editedAt: e2.body.message.editedAt,
        reactions: [{ emoji: '👀', count: 1, userIds: [C.user.id] }],
      });
      expect(now[1]).toMatchObject({ rev: d2.rev, deletedAt: d2.deletedAt, reactions: [] });
      expect(now[2]).toMatchObject({ rev: m3.rev, editedAt: null });

      worker = await startWorkerProcess(env.env);
      procs.push(worker);
      const rows = await waitFor(async () => {
        const r = await storedMessages(env.pool, chat.id);
        return r.length === 3 && r.every((row, i) => row.rev === now[i]!.rev) ? r : null;
      }, 'the new worker to write the three messages at their last revs');
      expect(rows.map(lifecycleFields)).toEqual(now.map(lifecycleFields));
      await waitFor(
        async () => (await c2.chat(B.token, chat.id)).body.chat.persistedSeq === 3,
        'persistedSeq 3 once the worker wrote them',
      );
      // And history after the write still shows the changes (PostgreSQL's copy is the last one).
      const after = (await h2.history(B.token, chat.id, 'after=0')).body.messages as unknown as WireMessage[];
      expect(after.map(lifecycleFields)).toEqual(now.map(lifecycleFields));
      await Promise.all([bs, as].map((s) => s.close()));
    });
  });

  describe('every persisted frame in this file', () => {
    it('named only seqs PostgreSQL held when it arrived', async () => {
      const checks = (await Promise.all(persistedWatches.map((w) => w.checks()))).flat();
      expect(checks.filter((c) => c.chatId === chatId).length).toBeGreaterThan(0);
      for (const c of checks) expect(c.held, `persisted ${c.seq} of ${c.chatId}`).toBe(c.seq);
    });
  });
});
