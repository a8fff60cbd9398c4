import { describe, expect, it } from 'vitest';
import { changesStored, checkChanges, type StoredRow } from '../../scripts/faults/change-check.js';
import type { Acked, AckedChange, ChangeOp, MessageState } from '../../scripts/faults/load-client.js';

/**
 * The guarantee checker's change columns: the final rows against the last acked change of each
 * message, on made-up acks and rows (the checker's e2e test runs them against real processes).
 */
const CHAT = 'chat-1';
const ALICE = 'alice';
const BOB = 'bob';

const send = (seq: number): Acked => ({
  clientMsgId: `m${seq}`,
  chatId: CHAT,
  senderId: ALICE,
  seq,
  id: `id${seq}`,
  attempts: 1,
});

const state = (rev: number, over: Partial<MessageState> = {}): MessageState => ({
  body: 'm1',
  deletedAt: null,
  reactions: [],
  rev,
  ...over,
});

const change = (seq: number, actorId: string, op: ChangeOp, message: MessageState): AckedChange => ({
  clientMsgId: `c-${message.rev}`,
  chatId: CHAT,
  seq,
  actorId,
  op,
  message,
  attempts: 1,
});

const row = (seq: number, s: MessageState): StoredRow => ({ chatId: CHAT, seq, ...s });

const edit1 = change(1, ALICE, { kind: 'edit', body: 'm1~e1' }, state(5, { body: 'm1~e1' }));
const edit2 = change(1, ALICE, { kind: 'edit', body: 'm1~e2' }, state(7, { body: 'm1~e2' }));
const bobOn = change(
  1,
  BOB,
  { kind: 'react', emoji: '👍', on: true },
  state(8, { body: 'm1~e2', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] }),
);

const none = new Set<string>();

describe('checkChanges', () => {
  it('counts nothing when every row is the last acked change (a later rev is fine)', () => {
    const final = state(9, { body: 'm1~e2', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] });
    const r = checkChanges([send(1)], [edit1, edit2, bobOn], [row(1, final)], none);
    expect(r).toMatchObject({
      changesAcked: 3,
      changedMessages: 1,
      lostChanges: 0,
      resurrectedDeletes: 0,
      outOfOrderEdits: 0,
    });
  });

  it('counts an older acked edit in the row as out of order, another body or a missing reaction as lost', () => {
    const older = row(1, state(8, { body: 'm1~e1', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] }));
    expect(checkChanges([send(1)], [edit1, edit2, bobOn], [older], none)).toMatchObject({
      outOfOrderEdits: 1,
      lostChanges: 0,
    });
    // The original body after an acked edit: the edit is lost (it is no older acked edit).
    const original = row(1, state(8, { body: 'm1', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] }));
    expect(checkChanges([send(1)], [edit1, edit2, bobOn], [original], none)).toMatchObject({
      outOfOrderEdits: 0,
      lostChanges: 1,
    });
    const noReaction = row(1, state(8, { body: 'm1~e2' }));
    expect(checkChanges([send(1)], [edit1, edit2, bobOn], [noReaction], none).lostChanges).toBe(1);
    // A reaction taken off with an ack that is still there.
    const bobOff = change(1, BOB, { kind: 'react', emoji: '👍', on: false }, state(10, { body: 'm1~e2' }));
    const stillOn = row(1, state(10, { body: 'm1~e2', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] }));
    expect(checkChanges([send(1)], [edit1, edit2, bobOn, bobOff], [stillOn], none).lostChanges).toBe(1);
  });

  it('counts a row behind the last acked rev, or no row at all, as lost', () => {
    const behind = row(1, state(7, { body: 'm1~e2', reactions: [{ emoji: '👍', count: 1, userIds: [BOB] }] }));
    const r = checkChanges([send(1)], [edit1, edit2, bobOn], [behind], none);
    expect(r.lostChanges).toBe(1);
    expect(r.problems[0]).toMatch(/rev 7 < the last acked 8/);
    expect(checkChanges([send(1)], [edit1], [], none).lostChanges).toBe(1);
  });

  it('counts an acked delete whose row is not a tombstone as resurrected', () => {
    const del = change(1, ALICE, { kind: 'delete' }, state(9, { body: '', deletedAt: '2026-01-01T00:00:00Z' }));
    const tomb = row(1, state(9, { body: '', deletedAt: '2026-01-01T00:00:00Z' }));
    expect(checkChanges([send(1)], [edit1, del], [tomb], none)).toMatchObject({
      resurrectedDeletes: 0,
      lostChanges: 0,
    });
    const back = row(1, state(9, { body: 'm1~e1' }));
    expect(checkChanges([send(1)], [edit1, del], [back], none)).toMatchObject({
      resurrectedDeletes: 1,
      lostChanges: 0,
    });
    // A tombstone no acked delete made is a change that is not the last acked one.
    expect(checkChanges([send(1)], [edit1], [tomb], none).lostChanges).toBe(1);
  });

  it('leaves out a message whose change was never answered for good', () => {
    const r = checkChanges([send(1)], [edit1], [row(1, state(1))], new Set([`${CHAT}/1`]));
    expect(r).toMatchObject({ unsettled: 1, changedMessages: 0, lostChanges: 0 });
  });
});

describe('changesStored', () => {
  it('holds once every changed message has a row at or past its last acked rev', () => {
    expect(changesStored([edit1, edit2], [row(1, state(5))])).toBe(false);
    expect(changesStored([edit1, edit2], [row(1, state(7))])).toBe(true);
    expect(changesStored([edit1], [])).toBe(false);
    expect(changesStored([], [])).toBe(true);
  });
});
