import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../clients/js/src/backoff.js';
import { Outbox, type OutboxItem, type OutboxStorage } from '../../clients/js/src/outbox.js';
import { ChatTimeline } from '../../clients/js/src/timeline.js';
import type { Message } from '../../clients/js/src/types.js';

const msg = (seq: number, rev = seq, body = `m${seq}`): Message => ({
  id: `id${seq}`,
  chatId: 'c',
  seq,
  senderId: 'u',
  body,
  clientMsgId: null,
  createdAt: new Date(0).toISOString(),
  replyTo: null,
  editedAt: null,
  deletedAt: null,
  reactions: [],
  rev,
});

describe('backoffDelay (full jitter)', () => {
  it('stays in [0, min(max, base * 2^attempt)) and reaches both ends', () => {
    fc.assert(
      fc.property(fc.nat(60), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }, () => r);
        const ceiling = Math.min(5000, 100 * 2 ** attempt);
        return Number.isInteger(d) && d >= 0 && d < ceiling;
      }),
    );
    expect(backoffDelay(3, { baseMs: 100, maxMs: 5000 }, () => 0)).toBe(0);
    expect(backoffDelay(3, { baseMs: 100, maxMs: 5000 }, () => 0.999999)).toBe(799);
    expect(backoffDelay(40, { baseMs: 100, maxMs: 5000 }, () => 0.999999)).toBe(4999);
  });
});

describe('ChatTimeline (ordering and dedupe)', () => {
  it('delivers every message once, in seq order, whatever order and repeats they arrive in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 0, maxLength: 120 }), (extra) => {
        const t = new ChatTimeline('c');
        const order = fc.sample(
          fc.shuffledSubarray(
            [...Array(30).keys()].map((i) => i + 1),
            { minLength: 30 },
          ),
          1,
        )[0]!;
        const delivered: number[] = [];
        for (const seq of [...order, ...extra]) for (const m of t.apply(msg(seq)).delivered) delivered.push(m.seq);
        expect(delivered).toEqual([...Array(30).keys()].map((i) => i + 1));
        expect(t.hasGap).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('holds a message above a hole (a gap) until the hole fills', () => {
    const t = new ChatTimeline('c');
    expect(t.apply(msg(1)).delivered.map((m) => m.seq)).toEqual([1]);
    const r = t.apply(msg(3));
    expect(r).toMatchObject({ delivered: [], gap: true });
    expect(t.lastSeq).toBe(1);
    expect(t.apply(msg(2)).delivered.map((m) => m.seq)).toEqual([2, 3]);
    expect(t.hasGap).toBe(false);
  });

  it('applies a newer rev of a delivered message as an update, never as a new message', () => {
    const t = new ChatTimeline('c');
    t.apply(msg(1, 1));
    t.apply(msg(2, 2));
    const edited = t.apply(msg(1, 3, 'edited'));
    expect(edited.delivered).toEqual([]);
    expect(edited.updated.map((m) => m.body)).toEqual(['edited']);
    expect(t.apply(msg(1, 2, 'stale')).updated).toEqual([]); // an older state loses
    expect(t.get(1)?.body).toBe('edited');
    expect(t.rev).toBe(3);
  });

  it('advances its rev only without holes, and to what synced says', () => {
    const t = new ChatTimeline('c', { seq: 0, rev: 0 });
    t.apply(msg(1, 1));
    t.apply(msg(2, 5)); // revs 2..4 unseen (changes to other messages)
    expect(t.rev).toBe(1);
    t.synced(7);
    expect(t.rev).toBe(7);
  });

  it('skipHoles delivers what waited above seqs that do not exist', () => {
    const t = new ChatTimeline('c');
    t.apply(msg(1));
    t.apply(msg(4));
    t.apply(msg(6));
    expect(t.skipHoles().map((m) => m.seq)).toEqual([4, 6]);
    expect(t.lastSeq).toBe(6);
    expect(t.apply(msg(7)).delivered.map((m) => m.seq)).toEqual([7]);
  });

  it('starts from a point: older messages are history, not news', () => {
    const t = new ChatTimeline('c', { seq: 10 });
    expect(t.apply(msg(9)).delivered).toEqual([]);
    expect(t.apply(msg(11)).delivered.map((m) => m.seq)).toEqual([11]);
    t.addHistory([msg(5), msg(6)]);
    expect(t.messages().map((m) => m.seq)).toEqual([5, 6, 9, 11]);
  });
});

const send = (id: string, chatId: string): OutboxItem => ({
  kind: 'send',
  clientMsgId: id,
  chatId,
  body: id,
  createdAt: new Date(0).toISOString(),
});

describe('Outbox', () => {
  it('has one item in flight per chat, in the order made, and moves on only when it is removed', () => {
    const o = new Outbox();
    for (const [id, chat] of [
      ['a1', 'A'],
      ['b1', 'B'],
      ['a2', 'A'],
      ['a3', 'A'],
    ] as const)
      o.add(send(id, chat));
    expect(o.due(0, 1000).map((i) => i.clientMsgId)).toEqual(['a1', 'b1']);
    expect(o.due(1, 1000)).toEqual([]); // in flight, not due again yet
    expect(o.due(1000, 1000).map((i) => i.clientMsgId)).toEqual(['a1', 'b1']); // retried, same items
    o.remove('a1');
    expect(o.due(1001, 1000).map((i) => i.clientMsgId)).toEqual(['a2']);
    expect(o.remove('a1')).toBeUndefined(); // a second ack changes nothing
    o.resetInFlight();
    expect(o.due(1002, 1000).map((i) => i.clientMsgId)).toEqual(['b1', 'a2']);
  });

  it('keeps its items in the storage and restores them, before new ones', async () => {
    let saved: readonly OutboxItem[] = [];
    const storage: OutboxStorage = { load: () => saved, save: (items) => void (saved = [...items]) };
    const first = new Outbox(storage);
    await first.restore();
    first.add(send('x1', 'A'));
    first.add(send('x2', 'A'));
    first.remove('x1');
    expect(saved.map((i) => i.clientMsgId)).toEqual(['x2']);

    const second = new Outbox(storage);
    second.add(send('x3', 'A')); // made before the storage was read: kept, and not saved over it
    expect(saved.map((i) => i.clientMsgId)).toEqual(['x2']);
    await second.restore();
    expect(second.all().map((i) => i.clientMsgId)).toEqual(['x2', 'x3']);
    expect(saved.map((i) => i.clientMsgId)).toEqual(['x2', 'x3']);
    expect(second.due(0, 1000).map((i) => i.clientMsgId)).toEqual(['x2']);
  });
});
