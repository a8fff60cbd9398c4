import type { Acked, AckedChange, MessageState } from './load-client.js';

/** A message as PostgreSQL holds it at the end of a run (what the change checks read). */
export interface StoredRow extends MessageState {
  chatId: string;
  seq: number;
}

export interface ChangeCounts {
  /** Acked edits, deletes and reactions. */
  changesAcked: number;
  /** Messages with acked changes that were checked (not unsettled). */
  changedMessages: number;
  /**
   * Messages whose row lost an acked change: a lower rev than the last acked change, a body, a
   * tombstone or a reaction that is not the last acked one's (and not an older acked edit's, see
   * outOfOrderEdits), or no row at all.
   */
  lostChanges: number;
  /** Messages with an acked delete whose row is not a tombstone. */
  resurrectedDeletes: number;
  /** Messages whose row shows an older acked edit than the last acked one. */
  outOfOrderEdits: number;
  /**
   * Messages left out: a change of them was never answered for good (refused after an attempt
   * without an answer, or still pending at the stop), so their final state is not known.
   */
  unsettled: number;
  /** What was wrong with each counted message, for the log. */
  problems: string[];
}

const keyOf = (chatId: string, seq: number) => `${chatId}/${seq}`;

/**
 * Compares the final state of every message with acked changes with the last acked change of
 * each of its parts: the body (its sender's last acked edit), the tombstone (any acked delete),
 * every user's reaction (that user's last acked reaction to it), and the rev (the highest an ack
 * carried: the row's may be higher, never lower). Each client makes one change at a time, so its
 * acks are in the order it made them; `changes` keeps each client's in that order.
 * Each message counts once, in the first column that applies: resurrected delete, out-of-order
 * edit, lost change.
 */
export function checkChanges(
  sends: readonly Acked[],
  changes: readonly AckedChange[],
  rows: readonly StoredRow[],
  unsettled: ReadonlySet<string>,
): ChangeCounts {
  const originalBody = new Map(sends.map((a) => [keyOf(a.chatId, a.seq), a.clientMsgId]));
  const byMessage = new Map<string, AckedChange[]>();
  for (const c of changes) {
    const key = keyOf(c.chatId, c.seq);
    const list = byMessage.get(key);
    if (list) list.push(c);
    else byMessage.set(key, [c]);
  }
  const stored = new Map(rows.map((r) => [keyOf(r.chatId, r.seq), r]));
  const out: ChangeCounts = {
    changesAcked: changes.length,
    changedMessages: 0,
    lostChanges: 0,
    resurrectedDeletes: 0,
    outOfOrderEdits: 0,
    unsettled: 0,
    problems: [],
  };

  for (const [key, acks] of byMessage) {
    if (unsettled.has(key)) {
      out.unsettled++;
      continue;
    }
    out.changedMessages++;
    const row = stored.get(key);
    const lastRev = Math.max(...acks.map((a) => a.message.rev));
    // The message's acked changes, for the log: actor, what, the rev and body the ack carried.
    const history = () =>
      acks
        .map((a) => {
          const what = a.op.kind === 'react' ? `react ${a.op.emoji} ${a.op.on ? 'on' : 'off'}` : a.op.kind;
          return `${a.actorId.slice(0, 8)} ${what} rev ${a.message.rev} ${JSON.stringify(a.message.body)}`;
        })
        .join('; ');
    const lost = (why: string) => {
      out.lostChanges++;
      out.problems.push(`lost change of ${key}: ${why} (acked: ${history()})`);
    };
    if (!row) {
      lost('no row');
      continue;
    }
    const tombstone = row.deletedAt !== null && row.body === '' && row.reactions.length === 0;
    const deletes = acks.filter((a) => a.op.kind === 'delete');
    if (deletes.length > 0) {
      if (!tombstone) {
        out.resurrectedDeletes++;
        out.problems.push(
          `resurrected delete of ${key}: acked at rev ${deletes[0]?.message.rev}, the row (rev ${row.rev}) has body ${JSON.stringify(row.body)}, deletedAt ${row.deletedAt}`,
        );
      } else if (row.rev < lastRev) lost(`the row's rev ${row.rev} < the last acked ${lastRev}`);
      continue;
    }
    if (row.deletedAt !== null) {
      lost(`a tombstone (rev ${row.rev}), but no delete of it was acked`);
      continue;
    }

    const edits = acks.flatMap((a) => (a.op.kind === 'edit' ? [{ body: a.op.body, rev: a.message.rev }] : []));
    const lastEdit = edits.at(-1);
    const expectedBody = lastEdit?.body ?? originalBody.get(key);
    if (expectedBody !== undefined && row.body !== expectedBody) {
      const older = edits.slice(0, -1).find((e) => e.body === row.body);
      if (older) {
        out.outOfOrderEdits++;
        out.problems.push(
          `out-of-order edit of ${key}: the row (rev ${row.rev}) shows the edit acked at rev ${older.rev}, the last was acked at rev ${lastEdit?.rev} (acked: ${history()})`,
        );
      } else
        lost(`body ${JSON.stringify(row.body)} (rev ${row.rev}), the last acked is ${JSON.stringify(expectedBody)}`);
      continue;
    }

    // Each user's reactions: the last acked one for each emoji says whether it is on.
    const reactions = new Map<string, boolean>();
    for (const a of acks) if (a.op.kind === 'react') reactions.set(`${a.actorId}|${a.op.emoji}`, a.op.on);
    const wrong = [...reactions].filter(([k, on]) => {
      const [actorId, emoji] = k.split('|') as [string, string];
      const has = row.reactions.some((r) => r.emoji === emoji && r.userIds.includes(actorId));
      return has !== on;
    });
    if (wrong.length > 0) {
      lost(
        `reactions ${wrong.map(([k, on]) => `${k} ${on ? 'on' : 'off'}`).join(', ')} not as last acked (rev ${row.rev})`,
      );
      continue;
    }
    if (row.rev < lastRev) lost(`the row's rev ${row.rev} < the last acked ${lastRev}`);
  }
  return out;
}

/** True once every message with acked changes has a row at (or past) its last acked rev. */
export function changesStored(
  changes: readonly AckedChange[],
  rows: readonly Pick<StoredRow, 'chatId' | 'seq' | 'rev'>[],
) {
  const revs = new Map(rows.map((r) => [keyOf(r.chatId, r.seq), r.rev]));
  return changes.every((c) => (revs.get(keyOf(c.chatId, c.seq)) ?? -1) >= c.message.rev);
}
