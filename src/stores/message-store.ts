import type { Pool } from 'pg';
import type { Message, Reaction } from '../domain/types.js';

interface MessageRow {
  id: string;
  chat_id: string;
  seq: number;
  sender_id: string;
  body: string;
  client_msg_id: string | null;
  created_at: string;
  reply_to: number | null;
  edited_at: string | null;
  deleted_at: string | null;
  reactions: Reaction[];
  rev: number;
}

export const toMessage = (r: MessageRow): Message => ({
  id: r.id,
  chatId: r.chat_id,
  seq: r.seq,
  senderId: r.sender_id,
  body: r.body,
  clientMsgId: r.client_msg_id,
  createdAt: r.created_at,
  replyTo: r.reply_to,
  editedAt: r.edited_at,
  deletedAt: r.deleted_at,
  reactions: r.reactions,
  rev: r.rev,
});

/** Every column of a message, in the order of Message (and of toMessage). */
export const MESSAGE_COLUMNS =
  'id, chat_id, seq, sender_id, body, client_msg_id, created_at, reply_to, edited_at, deleted_at, reactions, rev';
const COLUMNS = MESSAGE_COLUMNS;

/** Bound arrays, one per column: values never enter the SQL text (docs/architecture.md). */
const INSERT_BATCH = `
  INSERT INTO messages (${COLUMNS})
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                       $8::bigint[], $9::timestamptz[], $10::timestamptz[], $11::jsonb[], $12::bigint[])
  ON CONFLICT DO NOTHING
  RETURNING chat_id, seq`;

/**
 * A batch of changes (edits, deletes, reactions): each row takes the message's state as of its
 * change, unless PostgreSQL already holds a later one (the rev), so a stale copy never wins.
 */
const UPDATE_CHANGES = `
  UPDATE messages m
     SET body = u.body, edited_at = u.edited_at, deleted_at = u.deleted_at, reactions = u.reactions, rev = u.rev
    FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::jsonb[], $7::bigint[])
         AS u(chat_id, seq, body, edited_at, deleted_at, reactions, rev)
   WHERE m.chat_id = u.chat_id AND m.seq = u.seq AND m.rev < u.rev`;

/** What a batch INSERT did: rows that were new, and messages left out as superseded (see insertBatch). */
export interface InsertResult {
  inserted: number;
  superseded: Message[];
}

function columns(messages: Message[], clientMsgIds: (string | null)[]) {
  return [
    messages.map((m) => m.id),
    messages.map((m) => m.chatId),
    messages.map((m) => m.seq),
    messages.map((m) => m.senderId),
    messages.map((m) => m.body),
    clientMsgIds,
    messages.map((m) => m.createdAt),
    messages.map((m) => m.replyTo),
    messages.map((m) => m.editedAt),
    messages.map((m) => m.deletedAt),
    messages.map((m) => JSON.stringify(m.reactions)),
    messages.map((m) => m.rev),
  ];
}

export function createMessageStore(pool: Pool) {
  return {
    /**
     * Writes a batch with one INSERT; rows already there are skipped, so retries are harmless.
     * A row can also conflict on (chat, sender, clientMsgId) alone, with a row of another seq:
     * - that row's seq is lower: a retry came after Redis forgot the clientMsgId, was given a new
     *   seq, acked and delivered. It is kept, without the id, rather than lose an acked message.
     * - that row's seq is higher: this is a first attempt whose reply Redis never gave (it went
     *   down after running the send), and the client's retry was stored during the outage and
     *   acked. This one was never acked: it is `superseded`, not stored, and its seq stays a gap
     *   at the outage (docs/protocol.md allows seqs to be skipped there, never reused).
     */
    async insertBatch(messages: Message[]): Promise<InsertResult> {
      if (messages.length === 0) return { inserted: 0, superseded: [] };
      const { rows } = await pool.query<{ chat_id: string; seq: number }>(
        INSERT_BATCH,
        columns(
          messages,
          messages.map((m) => m.clientMsgId),
        ),
      );
      if (rows.length === messages.length) return { inserted: rows.length, superseded: [] };
      const present = await pool.query<{ chat_id: string; seq: number }>(
        `SELECT chat_id, seq FROM messages WHERE (chat_id, seq) IN (SELECT * FROM unnest($1::uuid[], $2::bigint[]))`,
        [messages.map((m) => m.chatId), messages.map((m) => m.seq)],
      );
      const have = new Set(present.rows.map((r) => `${r.chat_id}/${r.seq}`));
      const missing = messages.filter((m) => !have.has(`${m.chatId}/${m.seq}`));
      if (missing.length === 0) return { inserted: rows.length, superseded: [] };
      // Only a clientMsgId can make a row with a free seq conflict: which seq holds it?
      const owners = await pool.query<{ chat_id: string; sender_id: string; client_msg_id: string; seq: number }>(
        `SELECT chat_id, sender_id, client_msg_id, seq FROM messages
          WHERE (chat_id, sender_id, client_msg_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))`,
        [missing.map((m) => m.chatId), missing.map((m) => m.senderId), missing.map((m) => m.clientMsgId)],
      );
      const ownerSeq = new Map(owners.rows.map((r) => [`${r.chat_id}/${r.sender_id}/${r.client_msg_id}`, r.seq]));
      const superseded = missing.filter(
        (m) => (ownerSeq.get(`${m.chatId}/${m.senderId}/${m.clientMsgId}`) ?? 0) > m.seq,
      );
      const kept = missing.filter((m) => !superseded.includes(m));
      const again =
        kept.length > 0
          ? await pool.query(
              INSERT_BATCH,
              columns(
                kept,
                kept.map(() => null),
              ),
            )
          : { rowCount: 0 };
      return { inserted: rows.length + (again.rowCount ?? 0), superseded };
    },

    /**
     * Writes changed messages' states (one statement; a row already at a later rev is left alone).
     * A message not in PostgreSQL yet is skipped: its INSERT, still to come, carries the change
     * (the log changes pending messages in place). Returns how many rows changed.
     */
    async updateChanges(messages: Message[]): Promise<number> {
      if (messages.length === 0) return 0;
      // One row per message: the latest state (one statement cannot update a row twice).
      const latest = new Map<string, Message>();
      for (const m of messages) {
        const key = `${m.chatId}/${m.seq}`;
        const seen = latest.get(key);
        if (!seen || seen.rev < m.rev) latest.set(key, m);
      }
      const rows = [...latest.values()];
      const { rowCount } = await pool.query(UPDATE_CHANGES, [
        rows.map((m) => m.chatId),
        rows.map((m) => m.seq),
        rows.map((m) => m.body),
        rows.map((m) => m.editedAt),
        rows.map((m) => m.deletedAt),
        rows.map((m) => JSON.stringify(m.reactions)),
        rows.map((m) => m.rev),
      ]);
      return rowCount ?? 0;
    },

    /** Messages by seq (those PostgreSQL holds), ascending. */
    async bySeqs(chatId: string, seqs: readonly number[]): Promise<Message[]> {
      if (seqs.length === 0) return [];
      const { rows } = await pool.query<MessageRow>(
        `SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq`,
        [chatId, seqs],
      );
      return rows.map(toMessage);
    },

    /** One message by seq, or null. */
    async get(chatId: string, seq: number): Promise<Message | null> {
      const { rows } = await pool.query<MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND seq = $2`, [
        chatId,
        seq,
      ]);
      return rows[0] ? toMessage(rows[0]) : null;
    },

    /** Messages up to `upToSeq` changed after `sinceRev`, in rev order (sync with {seq, rev}). */
    async changedSince(chatId: string, sinceRev: number, upToSeq: number, limit: number): Promise<Message[]> {
      const { rows } = await pool.query<MessageRow>(
        `SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND rev > $2 AND seq <= $3 ORDER BY rev LIMIT $4`,
        [chatId, sinceRev, upToSeq, limit],
      );
      return rows.map(toMessage);
    },

    /**
     * Up to `limit` messages with seq > bound (ascending from it) or seq < bound (the newest
     * ones below it), returned in ascending seq.
     */
    async page(chatId: string, mode: 'after' | 'before', bound: number, limit: number): Promise<Message[]> {
      const sql =
        mode === 'after'
          ? `SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3`
          : `SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`;
      const { rows } = await pool.query<MessageRow>(sql, [chatId, bound, limit]);
      const messages = rows.map(toMessage);
      return mode === 'after' ? messages : messages.reverse();
    },

    /** The message a sender's clientMsgId produced in the chat, or null. */
    async findByClientMsgId(chatId: string, senderId: string, clientMsgId: string): Promise<Message | null> {
      const { rows } = await pool.query<MessageRow>(
        `SELECT ${COLUMNS} FROM messages WHERE chat_id = $1 AND sender_id = $2 AND client_msg_id = $3`,
        [chatId, senderId, clientMsgId],
      );
      return rows[0] ? toMessage(rows[0]) : null;
    },

    async maxSeq(chatId: string): Promise<number> {
      const { rows } = await pool.query<{ seq: number | null }>(
        'SELECT max(seq) AS seq FROM messages WHERE chat_id = $1',
        [chatId],
      );
      return rows[0]?.seq ?? 0;
    },

    /** Which of `seqs` PostgreSQL holds for the chat (the archive checks before it trims). */
    async heldSeqs(chatId: string, seqs: number[]): Promise<Set<number>> {
      if (seqs.length === 0) return new Set();
      const { rows } = await pool.query<{ seq: number }>(
        'SELECT seq FROM messages WHERE chat_id = $1 AND seq = ANY($2::bigint[])',
        [chatId, seqs],
      );
      return new Set(rows.map((r) => r.seq));
    },

    /** The highest seq PostgreSQL holds per chat (0 for chats it has none of), in one query. */
    async maxSeqs(chatIds: string[]): Promise<Map<string, number>> {
      const { rows } = await pool.query<{ chat_id: string; seq: number | null }>(
        `SELECT c.id AS chat_id, (SELECT max(seq) FROM messages m WHERE m.chat_id = c.id) AS seq
           FROM unnest($1::uuid[]) AS c(id)`,
        [chatIds],
      );
      return new Map(rows.map((r) => [r.chat_id, r.seq ?? 0]));
    },
  };
}

export type MessageStore = ReturnType<typeof createMessageStore>;
