import type { Pool, PoolClient } from 'pg';
import { withTransaction } from '../db/transaction.js';
import { AppError } from '../domain/errors.js';
import type { Message } from '../domain/types.js';
import { type ApplyChange, encodeMessage } from '../message-log/message-log.js';
import { MESSAGE_COLUMNS, toMessage } from './message-store.js';

/** PostgreSQL channel for live fan-out while Redis is unreachable (NOTIFY is per database). */
export const PG_MESSAGES_CHANNEL = 'parley_messages';
/** The same for changed messages (`message.updated`). */
export const PG_UPDATES_CHANNEL = 'parley_updates';
/** NOTIFY payloads must stay under 8000 bytes; a larger message is sent by reference. */
const NOTIFY_MAX_BYTES = 7900;

/** A message to store, before its seq and rev are known. */
export type DirectSendInput = Omit<Message, 'seq' | 'rev'>;

/** `chatId SP json`, or `chatId SP @seq` when the message is too large for a NOTIFY. */
export function notifyPayload(chatId: string, seq: number, json: string): string {
  const inline = `${chatId} ${json}`;
  return Buffer.byteLength(inline) <= NOTIFY_MAX_BYTES ? inline : `${chatId} @${seq}`;
}

/**
 * Sends written straight to PostgreSQL while Redis is unreachable (degraded mode). The seq is
 * allocated here under the chat row's lock: the first degraded send of an outage jumps `seqGap`
 * above anything PostgreSQL holds, because Redis may have issued seqs it has not persisted yet;
 * later ones continue by one. Redis's counter is raised past these on recovery.
 */
/** How long after another process found Redis back no new degraded run may start. */
const RECOVERY_HOLD = '5 seconds';

/**
 * Refuses to open a degraded run while another api process has just found Redis back: this one
 * will see it too within a probe, and a run opened now would issue seqs (and revs) a gap above
 * the ones Redis issues meanwhile, so that a chat's seqs would no longer only grow.
 */
async function refuseRunAfterRecovery(client: PoolClient): Promise<void> {
  const { rows } = await client.query<{ recent: boolean }>(
    `SELECT at > now() - interval '${RECOVERY_HOLD}' AS recent FROM redis_recoveries`,
  );
  if (rows[0]?.recent) {
    throw new AppError('unavailable', 'Redis is back: retry with the same clientMsgId', { retryAfterMs: 500 });
  }
}

/**
 * Locks the chat's row for a degraded send or change (they allocate seqs and revs under it) and
 * checks that `userId` is a member: its degraded-run state.
 */
async function lockChatOf(
  client: PoolClient,
  chatId: string,
  userId: string,
): Promise<{ degraded_seq: number; degraded_rev: number; degraded_open: boolean }> {
  const chat = await client.query<{
    degraded_seq: number;
    degraded_rev: number;
    degraded_open: boolean;
    member: boolean;
  }>(
    `SELECT degraded_seq, degraded_rev, degraded_open,
            EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2) AS member
       FROM chats WHERE id = $1 FOR UPDATE`,
    [chatId, userId],
  );
  const row = chat.rows[0];
  if (!row) throw new AppError('not_found', 'no such chat');
  if (!row.member) throw new AppError('forbidden', 'not a member of this chat');
  return row;
}

export function createDirectMessageStore(pool: Pool, seqGap: number) {
  return {
    async send(input: DirectSendInput): Promise<{ message: Message; json: string; duplicate: boolean }> {
      return withTransaction(pool, async (client) => {
        const row = await lockChatOf(client, input.chatId, input.senderId);
        if (input.clientMsgId) {
          const prev = await client.query(
            `SELECT ${MESSAGE_COLUMNS} FROM messages
              WHERE chat_id = $1 AND sender_id = $2 AND client_msg_id = $3`,
            [input.chatId, input.senderId, input.clientMsgId],
          );
          if (prev.rows[0]) {
            const message = toMessage(prev.rows[0]);
            return { message, json: encodeMessage(message), duplicate: true };
          }
        }
        if (!row.degraded_open) await refuseRunAfterRecovery(client);
        const max = await client.query<{ seq: number | null; rev: number | null }>(
          'SELECT max(seq) AS seq, max(rev) AS rev FROM messages WHERE chat_id = $1',
          [input.chatId],
        );
        const top = Math.max(row.degraded_seq, max.rows[0]?.seq ?? 0);
        const seq = row.degraded_open ? top + 1 : top + seqGap;
        // Revs the same way: Redis may have issued revs it has not persisted yet.
        const topRev = Math.max(row.degraded_rev, max.rows[0]?.rev ?? 0);
        const rev = row.degraded_open ? topRev + 1 : topRev + seqGap;
        // The chat list's order moves with the send (no persist batch follows a degraded send).
        await client.query(
          `UPDATE chats SET degraded_seq = $2, degraded_rev = $4, degraded_open = true,
                  degraded_from = CASE WHEN degraded_open THEN degraded_from ELSE $2 END,
                  degraded_rev_from = CASE WHEN degraded_open THEN degraded_rev_from ELSE $4 END,
                  last_activity_at = GREATEST(last_activity_at, $3::timestamptz)
            WHERE id = $1`,
          [input.chatId, seq, input.createdAt, rev],
        );
        const message: Message = { ...input, seq, rev };
        // The message log's encoding, so every client sees the same JSON whichever path stored it.
        const json = encodeMessage(message);
        await client.query(
          `INSERT INTO messages (${MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, '[]', $9)`,
          [
            message.id,
            message.chatId,
            seq,
            message.senderId,
            message.body,
            message.clientMsgId,
            message.createdAt,
            message.replyTo,
            rev,
          ],
        );
        // Delivered on COMMIT to every api process LISTENing on this database.
        await client.query('SELECT pg_notify($1, $2)', [PG_MESSAGES_CHANNEL, notifyPayload(input.chatId, seq, json)]);
        return { message, json, duplicate: false };
      });
    },

    /**
     * A change to a message written straight to PostgreSQL while Redis is unreachable: under the
     * chat's row lock, the message's state now, the rules (`apply`; null: nothing to change), the
     * next rev (the first of an outage a gap above anything Redis may have issued, as for seqs),
     * and a NOTIFY for the live fan-out. Redis's rev counter is raised past it on recovery.
     */
    async change(input: {
      chatId: string;
      seq: number;
      actorId: string;
      apply: ApplyChange;
    }): Promise<{ message: Message; json: string; duplicate: boolean; changed: boolean }> {
      return withTransaction(pool, async (client) => {
        const row = await lockChatOf(client, input.chatId, input.actorId);
        const found = await client.query(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND seq = $2`, [
          input.chatId,
          input.seq,
        ]);
        if (!found.rows[0]) throw new AppError('not_found', 'no such message');
        const current = toMessage(found.rows[0]);
        const next = await input.apply(current);
        if (!next) return { message: current, json: encodeMessage(current), duplicate: false, changed: false };
        if (!row.degraded_open) await refuseRunAfterRecovery(client);
        const max = await client.query<{ seq: number | null; rev: number | null }>(
          'SELECT max(seq) AS seq, max(rev) AS rev FROM messages WHERE chat_id = $1',
          [input.chatId],
        );
        const topRev = Math.max(row.degraded_rev, max.rows[0]?.rev ?? 0);
        const rev = row.degraded_open ? topRev + 1 : topRev + seqGap;
        // A change that opens the run reserves the seq gap too: the run's later sends continue by
        // one from degraded_seq, and Redis may have issued seqs PostgreSQL does not hold yet.
        const seqFloor = row.degraded_open
          ? row.degraded_seq
          : Math.max(row.degraded_seq, max.rows[0]?.seq ?? 0) + seqGap;
        await client.query(
          `UPDATE chats SET degraded_rev = $2, degraded_seq = $3::bigint, degraded_open = true,
                  degraded_from = CASE WHEN degraded_open THEN degraded_from ELSE $3::bigint + 1 END,
                  degraded_rev_from = CASE WHEN degraded_open THEN degraded_rev_from ELSE $2 END
            WHERE id = $1`,
          [input.chatId, rev, seqFloor],
        );
        const message: Message = { ...next, rev };
        await client.query(
          `UPDATE messages SET body = $3, edited_at = $4, deleted_at = $5, reactions = $6, rev = $7
            WHERE chat_id = $1 AND seq = $2`,
          [
            input.chatId,
            input.seq,
            message.body,
            message.editedAt,
            message.deletedAt,
            JSON.stringify(message.reactions),
            rev,
          ],
        );
        const json = encodeMessage(message);
        await client.query('SELECT pg_notify($1, $2)', [
          PG_UPDATES_CHANNEL,
          notifyPayload(input.chatId, input.seq, json),
        ]);
        return { message, json, duplicate: false, changed: true };
      });
    },

    /** Records that this process found Redis back (before it closes the degraded runs). */
    async markRedisBack(): Promise<void> {
      await pool.query(
        `INSERT INTO redis_recoveries (at) VALUES (now()) ON CONFLICT (only_row) DO UPDATE SET at = excluded.at`,
      );
    },

    /** Chats that took degraded sends whose Redis counter has not been raised yet. */
    async openDegraded(): Promise<string[]> {
      const { rows } = await pool.query<{ id: string }>('SELECT id FROM chats WHERE degraded_open');
      return rows.map((r) => r.id);
    },

    /**
     * Closes a chat's degraded run under its row lock: `raise` (which moves Redis past the run)
     * runs while no degraded send of this chat can allocate, and a degraded send after the close
     * starts a new run a gap higher. So Redis and PostgreSQL never issue the same seq.
     */
    async closeDegraded(
      chatId: string,
      raise: (run: {
        degradedSeq: number;
        degradedRev: number;
        messages: Message[];
        changed: Message[];
      }) => Promise<void>,
    ): Promise<void> {
      await withTransaction(pool, async (client) => {
        const { rows } = await client.query<{
          degraded_seq: number;
          degraded_rev: number;
          degraded_rev_from: number;
          degraded_from: number;
          degraded_open: boolean;
        }>(
          'SELECT degraded_seq, degraded_rev, degraded_rev_from, degraded_from, degraded_open FROM chats WHERE id = $1 FOR UPDATE',
          [chatId],
        );
        const run = rows[0];
        if (!run?.degraded_open) return;
        const messages = await client.query(
          `SELECT ${MESSAGE_COLUMNS} FROM messages
            WHERE chat_id = $1 AND seq >= $2 AND client_msg_id IS NOT NULL`,
          [chatId, run.degraded_from],
        );
        // Changed in this run (edits, deletes, reactions of messages Redis may hold older copies of).
        const changed = await client.query(
          `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND rev >= $2 AND rev > 0`,
          [chatId, run.degraded_rev_from],
        );
        await raise({
          degradedSeq: run.degraded_seq,
          degradedRev: run.degraded_rev,
          messages: messages.rows.map(toMessage),
          changed: changed.rows.map(toMessage),
        });
        await client.query('UPDATE chats SET degraded_open = false WHERE id = $1', [chatId]);
      });
    },

    /** What a missing Redis counter is seeded from: the highest seq ever issued that PostgreSQL knows. */
    async seedFloor(chatId: string): Promise<{ top: number; topRev: number; gap: boolean } | null> {
      const { rows } = await pool.query<{ top: number; top_rev: number; reseed_gap: boolean }>(
        `SELECT GREATEST(c.degraded_seq, COALESCE(m.seq, 0)) AS top,
                GREATEST(c.degraded_rev, COALESCE(m.rev, 0)) AS top_rev,
                c.reseed_gap
           FROM chats c,
                LATERAL (SELECT max(seq) AS seq, max(rev) AS rev FROM messages WHERE chat_id = c.id) m
          WHERE c.id = $1`,
        [chatId],
      );
      const r = rows[0];
      return r ? { top: r.top, topRev: r.top_rev, gap: r.reseed_gap } : null;
    },

    async clearReseedGap(chatId: string): Promise<void> {
      await pool.query('UPDATE chats SET reseed_gap = false WHERE id = $1 AND reseed_gap', [chatId]);
    },

    /** Redis lost its data: every chat's next counter seed must jump a gap. */
    async markAllForReseedGap(): Promise<number> {
      const { rowCount } = await pool.query('UPDATE chats SET reseed_gap = true WHERE NOT reseed_gap');
      return rowCount ?? 0;
    },
  };
}

export type DirectMessageStore = ReturnType<typeof createDirectMessageStore>;
