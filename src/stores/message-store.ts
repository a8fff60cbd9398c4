import type { Pool } from 'pg';
import type { Message } from '../domain/types.js';

interface MessageRow {
  id: string;
  chat_id: string;
  seq: number;
  sender_id: string;
  body: string;
  client_msg_id: string | null;
  created_at: string;
}

export const toMessage = (r: MessageRow): Message => ({
  id: r.id,
  chatId: r.chat_id,
  seq: r.seq,
  senderId: r.sender_id,
  body: r.body,
  clientMsgId: r.client_msg_id,
  createdAt: r.created_at,
});

const COLUMNS = 'id, chat_id, seq, sender_id, body, client_msg_id, created_at';

/** Bound arrays, one per column: values never enter the SQL text (docs/architecture.md). */
const INSERT_BATCH = `
  INSERT INTO messages (${COLUMNS})
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[])
  ON CONFLICT DO NOTHING
  RETURNING chat_id, seq`;

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
          WHERE (chat_id, sender_id, client_msg_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[]))`,
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
