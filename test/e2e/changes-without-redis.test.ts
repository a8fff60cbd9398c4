import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateRedis, startPrivateRedis } from '../../scripts/faults/private-services.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * Edits, deletes and reactions while Redis is down go to PostgreSQL like sends do, reach the
 * members on both api processes (NOTIFY), take revs above anything Redis issued, and once Redis is
 * back a change through Redis outranks them and `sync` with {seq, rev} finds them.
 */
const GAP = 1000;
let redis: PrivateRedis;
let env: TestEnv;
const procs: RunningProcess[] = [];
let apis: ApiClient[];

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: true });
  env = await createTestEnv({ REDIS_URL: redis.url, REDIS_PROBE_MS: '200', DEGRADED_SEQ_GAP: String(GAP) });
  env.redis.on('error', () => undefined);
  procs.push(...(await Promise.all([startApiProcess(env.env), startApiProcess(env.env), startWorkerProcess(env.env)])));
  apis = [new ApiClient(procs[0]!.url), new ApiClient(procs[1]!.url)];
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await redis?.start().catch(() => undefined);
  await env?.cleanup();
  await redis?.destroy();
});

interface Msg {
  seq: number;
  rev: number;
  body: string;
  deletedAt: string | null;
  reactions: { emoji: string; count: number; userIds: string[] }[];
}
const mode = async (api: ApiClient) => ((await api.request('GET', '/readyz')).body as { mode: string }).mode;
const updated = (rev: number) => (f: Frame) => f.type === 'message.updated' && (f.message as Msg).rev === rev;
const row = async (chatId: string, seq: number) =>
  (
    await env.pool.query<{ body: string; rev: number; deleted_at: string | null; reactions: Msg['reactions'] }>(
      'SELECT body, rev, deleted_at, reactions FROM messages WHERE chat_id = $1 AND seq = $2',
      [chatId, seq],
    )
  ).rows[0];

describe('changes while Redis is down', () => {
  it('are written to PostgreSQL, reach every member, and outrank nothing Redis issues after', async () => {
    const a: TestUser = await apis[0]!.newUser('creator');
    const b: TestUser = await apis[1]!.newUser('sender');
    const chat = await apis[0]!.newChat(a, [b]);
    const sa: TestSocket = await connectClient(procs[0]!.url, a.token);
    const sb: TestSocket = await connectClient(procs[1]!.url, b.token);

    const sent = (await apis[1]!.send(b.token, chat.id, 'before the outage', 'pre-1')).body.message as Msg;
    const kept = (await apis[1]!.send(b.token, chat.id, 'kept', 'pre-2')).body.message as Msg;
    await waitFor(async () => (await row(chat.id, kept.seq)) !== undefined, 'both persisted');

    await redis.kill('SIGKILL');
    await waitFor(
      async () => (await mode(apis[0]!)) === 'degraded' && (await mode(apis[1]!)) === 'degraded',
      'degraded',
    );

    // An edit by its sender over WebSocket on api 1: acked, on both apis through NOTIFY. For a
    // moment after the outage began it is refused as unavailable (every api is writing what it
    // acked through Redis to PostgreSQL first): retried with the same clientMsgId, like a client.
    const ack = await waitFor(async () => {
      const from = sb.frames.length;
      sb.send({ type: 'edit', chatId: chat.id, seq: sent.seq, body: 'edited in the outage', clientMsgId: 'e-1' });
      const answer = await sb.next(
        (f) => f.clientMsgId === 'e-1' && (f.type === 'ack' || f.type === 'error'),
        'answer',
        from,
      );
      if (answer.type === 'error')
        expect(answer).toMatchObject({ code: 'unavailable', retryAfterMs: expect.any(Number) });
      return answer.type === 'ack' ? answer : undefined;
    }, 'degraded edit acked');
    expect(ack).toMatchObject({ state: 'accepted', message: { seq: sent.seq, body: 'edited in the outage' } });
    const editRev = (ack.message as Msg).rev;
    // The first change of the outage jumps a gap above what Redis may have issued.
    expect(editRev).toBeGreaterThanOrEqual(kept.rev + GAP);
    await sa.next(updated(editRev), 'the edit on api 0');
    // The run the edit opened reserved the seq gap too: a send in it cannot take a seq Redis may
    // have issued and not yet written.
    const during = (await apis[0]!.send(a.token, chat.id, 'sent in the outage', 'deg-send')).body.message as Msg;
    expect(during.seq).toBeGreaterThan(kept.seq + GAP);
    expect(await row(chat.id, sent.seq)).toMatchObject({ body: 'edited in the outage', rev: editRev });

    // A reaction by the creator over HTTP on api 0, then the creator deletes the other message.
    expect(
      (await apis[0]!.request('PUT', `/api/chats/${chat.id}/messages/${sent.seq}/reactions/👍`, undefined, a.token))
        .status,
    ).toBe(204);
    // The send took the next rev.
    expect(during.rev).toBe(editRev + 1);
    await sb.next(updated(editRev + 2), 'the reaction on api 1');
    expect(
      (await apis[0]!.request('DELETE', `/api/chats/${chat.id}/messages/${kept.seq}`, undefined, a.token)).status,
    ).toBe(204);
    const tomb = (await sb.next(updated(editRev + 3), 'the delete on api 1')).message as Msg;
    expect(tomb).toMatchObject({ seq: kept.seq, body: '', reactions: [] });
    expect(tomb.deletedAt).not.toBeNull();
    // The sender may not delete what is already a tombstone into anything else; editing it is a conflict.
    const conflict = await apis[1]!.request(
      'PATCH',
      `/api/chats/${chat.id}/messages/${kept.seq}`,
      { body: 'x' },
      b.token,
    );
    expect(conflict.status).toBe(409);

    // Redis back: a change through Redis takes a rev above the outage's.
    await redis.start();
    await waitFor(
      async () => (await mode(apis[0]!)) === 'normal' && (await mode(apis[1]!)) === 'normal',
      'normal again',
    );
    const after = await waitFor(async () => {
      const r = await apis[1]!.request(
        'PATCH',
        `/api/chats/${chat.id}/messages/${sent.seq}`,
        { body: 'after' },
        b.token,
      );
      return r.status === 200 ? (r.body.message as Msg) : undefined;
    }, 'an edit through Redis');
    expect(after.rev).toBeGreaterThan(editRev + 3);
    expect(after.reactions).toEqual([{ emoji: '👍', count: 1, userIds: [a.user.id] }]);
    await waitFor(async () => (await row(chat.id, sent.seq))?.rev === after.rev, 'the edit after the outage persisted');
    expect(await row(chat.id, sent.seq)).toMatchObject({ body: 'after', rev: after.rev });

    // A client that saw everything before the outage syncs from there: both changed messages, as they are now.
    const s = await connectClient(procs[0]!.url, a.token);
    s.send({ type: 'sync', chats: { [chat.id]: { seq: kept.seq, rev: kept.rev } } });
    const synced = await s.next((f) => f.type === 'synced', 'synced');
    const replayed = s.frames.filter((f) => f.type === 'message.updated').map((f) => f.message as Msg);
    expect(replayed.map((m) => [m.seq, m.rev])).toEqual([
      [kept.seq, editRev + 3],
      [sent.seq, after.rev],
    ]);
    expect(synced).toMatchObject({ revs: { [chat.id]: after.rev } });
    await Promise.all([sa.close(), sb.close(), s.close()]);
  });
});
