import type { Pool } from 'pg';
import type { Chat, ChatMember } from '../domain/types.js';

interface ChatRow {
  id: string;
  title: string | null;
  created_by: string;
  created_at: string;
}

/** `lastSeq` is not a column: the live value is Redis's counter, filled in by the chat service. */
export type ChatRecord = Omit<Chat, 'lastSeq'>;

const toChat = (r: ChatRow): ChatRecord => ({
  id: r.id,
  title: r.title,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

export function createChatStore(pool: Pool) {
  return {
    /** Creates the chat and its members (the creator included) in one transaction. */
    async create(chat: { id: string; title: string | null; createdBy: string; memberIds: string[] }): Promise<ChatRecord> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<ChatRow>(
          `INSERT INTO chats (id, title, created_by) VALUES ($1, $2, $3) RETURNING id, title, created_by, created_at`,
          [chat.id, chat.title, chat.createdBy],
        );
        await client.query(
          `INSERT INTO chat_members (chat_id, user_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
          [chat.id, chat.memberIds],
        );
        await client.query('COMMIT');
        return toChat(rows[0] as ChatRow);
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
    },

    async find(chatId: string): Promise<ChatRecord | null> {
      const { rows } = await pool.query<ChatRow>(
        'SELECT id, title, created_by, created_at FROM chats WHERE id = $1',
        [chatId],
      );
      return rows[0] ? toChat(rows[0]) : null;
    },

    /** The chat's member ids, or null when the chat does not exist. */
    async memberIds(chatId: string): Promise<string[] | null> {
      const { rows } = await pool.query<{ user_id: string | null }>(
        `SELECT m.user_id FROM chats c LEFT JOIN chat_members m ON m.chat_id = c.id WHERE c.id = $1`,
        [chatId],
      );
      if (rows.length === 0) return null;
      return rows.flatMap((r) => (r.user_id ? [r.user_id] : []));
    },

    async members(chatId: string): Promise<ChatMember[]> {
      const { rows } = await pool.query<{
        user_id: string;
        username: string;
        display_name: string;
        joined_at: string;
        last_read_seq: number;
      }>(
        `SELECT m.user_id, u.username, u.display_name, m.joined_at, m.last_read_seq
           FROM chat_members m JOIN users u ON u.id = m.user_id
          WHERE m.chat_id = $1 ORDER BY m.joined_at, u.username`,
        [chatId],
      );
      return rows.map((r) => ({
        userId: r.user_id,
        username: r.username,
        displayName: r.display_name,
        joinedAt: r.joined_at,
        lastReadSeq: r.last_read_seq,
      }));
    },

    async chatIdsOf(userId: string): Promise<string[]> {
      const { rows } = await pool.query<{ chat_id: string }>(
        'SELECT chat_id FROM chat_members WHERE user_id = $1',
        [userId],
      );
      return rows.map((r) => r.chat_id);
    },

    /** The user's chats with their read position, newest first. */
    async listFor(userId: string): Promise<(ChatRecord & { lastReadSeq: number })[]> {
      const { rows } = await pool.query<ChatRow & { last_read_seq: number }>(
        `SELECT c.id, c.title, c.created_by, c.created_at, m.last_read_seq
           FROM chat_members m JOIN chats c ON c.id = m.chat_id
          WHERE m.user_id = $1 ORDER BY c.created_at DESC, c.id`,
        [userId],
      );
      return rows.map((r) => ({ ...toChat(r), lastReadSeq: r.last_read_seq }));
    },

    /** Whether `targetId` is a user, and whether they share a chat with `viewerId`. */
    async relation(viewerId: string, targetId: string): Promise<{ exists: boolean; sharesChat: boolean }> {
      const { rows } = await pool.query<{ exists: boolean; shares: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM users WHERE id = $2) AS exists,
                EXISTS (SELECT 1 FROM chat_members a JOIN chat_members b ON b.chat_id = a.chat_id
                         WHERE a.user_id = $1 AND b.user_id = $2) AS shares`,
        [viewerId, targetId],
      );
      return { exists: rows[0]?.exists ?? false, sharesChat: rows[0]?.shares ?? false };
    },

    async countMembers(chatId: string): Promise<number> {
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM chat_members WHERE chat_id = $1',
        [chatId],
      );
      return rows[0]?.n ?? 0;
    },

    /** Adds a member; false when they already were one. */
    async addMember(chatId: string, userId: string): Promise<boolean> {
      const { rowCount } = await pool.query(
        'INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [chatId, userId],
      );
      return rowCount === 1;
    },

    /** Removes a member; false when they were not one. */
    async removeMember(chatId: string, userId: string): Promise<boolean> {
      const { rowCount } = await pool.query('DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2', [
        chatId,
        userId,
      ]);
      return rowCount === 1;
    },

    /** The chats of each of these users, in one query (a user in none is missing from the map). */
    async chatIdsOfUsers(userIds: string[]): Promise<Map<string, string[]>> {
      const { rows } = await pool.query<{ user_id: string; chat_ids: string[] }>(
        'SELECT user_id, array_agg(chat_id) AS chat_ids FROM chat_members WHERE user_id = ANY($1::uuid[]) GROUP BY user_id',
        [userIds],
      );
      return new Map(rows.map((r) => [r.user_id, r.chat_ids]));
    },

    /** Of these chat ids, the chats that exist, each with whether the user is a member: one query. */
    async accessOf(userId: string, chatIds: string[]): Promise<Map<string, boolean>> {
      const { rows } = await pool.query<{ id: string; member: boolean }>(
        `SELECT c.id, (m.user_id IS NOT NULL) AS member
           FROM chats c LEFT JOIN chat_members m ON m.chat_id = c.id AND m.user_id = $1
          WHERE c.id = ANY($2::uuid[])`,
        [userId, chatIds],
      );
      return new Map(rows.map((r) => [r.id, r.member]));
    },
  };
}

export type ChatStore = ReturnType<typeof createChatStore>;
