import type { Pool } from 'pg';
import { withTransaction } from '../db/transaction.js';
import type { ChatCursor } from '../domain/chat-cursor.js';
import type { Chat, ChatMember } from '../domain/types.js';

interface ChatRow {
  id: string;
  title: string | null;
  created_by: string;
  created_at: string;
  persisted_seq: number;
}

/** `lastSeq` is not a column: the live value is Redis's counter, filled in by the chat service. */
export type ChatRecord = Omit<Chat, 'lastSeq'>;

/** The limits a new membership must keep. */
export interface MembershipLimits {
  /** Most members of one chat. */
  maxMembers: number;
  /** Most chats one user is a member of. */
  maxChatsPerUser: number;
}

/** What adding a member did: only `added` changed anything. */
export type AddMemberResult = 'added' | 'already-member' | 'chat-full' | 'user-full' | 'no-chat' | 'no-user';

/** A chat's title and its members as offline notifications need them. */
export interface ChatAudience {
  title: string | null;
  members: { userId: string; username: string; displayName: string; lastReadSeq: number }[];
}

/** One page of a user's chats, most recent activity first; `next` is null on the last page. */
export interface ChatPage {
  chats: (ChatRecord & { lastReadSeq: number })[];
  next: ChatCursor | null;
}

const toChat = (r: ChatRow): ChatRecord => ({
  id: r.id,
  title: r.title,
  createdBy: r.created_by,
  createdAt: r.created_at,
  persistedSeq: r.persisted_seq,
});

/**
 * The chats of a user who has any left at the cap, counted after `lockUsers` (so under the lock;
 * READ COMMITTED gives each statement a fresh snapshot, and this one starts after the wait).
 */
const USERS_AT_CAP = `
  SELECT user_id FROM chat_members WHERE user_id = ANY($1::text[])
   GROUP BY user_id HAVING count(*) >= $2 ORDER BY user_id LIMIT 1`;

/**
 * Locks the users' rows, in id order (as the last-seen batch does, so the two never deadlock):
 * joins of one user queue up, so two at once cannot both pass the per-user cap. NO KEY UPDATE
 * leaves the foreign-key checks of other inserts (sessions, members) free to go on.
 */
const LOCK_USERS = 'SELECT id FROM users WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE';

export function createChatStore(pool: Pool) {
  return {
    /**
     * Creates the chat and its members (the creator included) in one transaction, unless one of
     * them is in `maxChatsPerUser` chats already: then nothing is written and that user is named.
     */
    async create(
      chat: { id: string; title: string | null; createdBy: string; memberIds: string[] },
      limits: Pick<MembershipLimits, 'maxChatsPerUser'>,
    ): Promise<{ chat: ChatRecord } | { userAtCap: string }> {
      return withTransaction(pool, async (client) => {
        await client.query(LOCK_USERS, [chat.memberIds]);
        const full = await client.query<{ user_id: string }>(USERS_AT_CAP, [chat.memberIds, limits.maxChatsPerUser]);
        if (full.rows[0]) return { userAtCap: full.rows[0].user_id };
        const { rows } = await client.query<ChatRow>(
          `INSERT INTO chats (id, title, created_by) VALUES ($1, $2, $3) RETURNING id, title, created_by, created_at, persisted_seq`,
          [chat.id, chat.title, chat.createdBy],
        );
        await client.query(
          `INSERT INTO chat_members (chat_id, user_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
          [chat.id, chat.memberIds],
        );
        return { chat: toChat(rows[0] as ChatRow) };
      });
    },

    async find(chatId: string): Promise<ChatRecord | null> {
      const { rows } = await pool.query<ChatRow>(
        'SELECT id, title, created_by, created_at, persisted_seq FROM chats WHERE id = $1',
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
      const { rows } = await pool.query<{ chat_id: string }>('SELECT chat_id FROM chat_members WHERE user_id = $1', [
        userId,
      ]);
      return rows.map((r) => r.chat_id);
    },

    /**
     * A page of the user's chats with their read position: most recent activity first (ties by
     * id), after `after` when given. A keyset page: activity only grows, so a chat that gets a
     * message while a client walks the pages moves ahead of the cursor and is not listed twice.
     * Reads every membership of the user to sort them (no index spans both tables); the per-user
     * cap bounds that.
     */
    async listFor(userId: string, page: { limit: number; after?: ChatCursor | undefined }): Promise<ChatPage> {
      const { rows } = await pool.query<ChatRow & { last_read_seq: number; activity_us: string }>(
        `SELECT c.id, c.title, c.created_by, c.created_at, c.persisted_seq, m.last_read_seq,
                (extract(epoch FROM c.last_activity_at) * 1000000)::bigint::text AS activity_us
           FROM chat_members m JOIN chats c ON c.id = m.chat_id
          WHERE m.user_id = $1
            AND ($2::bigint IS NULL
                 OR (c.last_activity_at, c.id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
          ORDER BY c.last_activity_at DESC, c.id DESC
          LIMIT $4`,
        [userId, page.after?.activityUs ?? null, page.after?.chatId ?? null, page.limit + 1],
      );
      const listed = rows.slice(0, page.limit);
      const last = listed.at(-1);
      return {
        chats: listed.map((r) => ({ ...toChat(r), lastReadSeq: r.last_read_seq })),
        next: rows.length > page.limit && last ? { activityUs: last.activity_us, chatId: last.id } : null,
      };
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

    /**
     * Adds a member if the chat and the user both have room. The chat's row is locked first, then
     * the user's, and only then are they counted: adds to one chat (or of one user) queue up, so
     * parallel adds reach the limits exactly and never pass them. Every transaction here locks
     * at most one chat, and before any user, so none of them can deadlock with another.
     */
    async addMember(chatId: string, userId: string, limits: MembershipLimits): Promise<AddMemberResult> {
      return withTransaction(pool, async (client) => {
        const chat = await client.query('SELECT 1 FROM chats WHERE id = $1 FOR NO KEY UPDATE', [chatId]);
        if (chat.rowCount === 0) return 'no-chat';
        const user = await client.query(LOCK_USERS, [[userId]]);
        if (user.rowCount === 0) return 'no-user';
        const { rows } = await client.query<{ member: boolean; members: number; chats: number }>(
          `SELECT EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2) AS member,
                  (SELECT count(*)::int FROM chat_members WHERE chat_id = $1) AS members,
                  (SELECT count(*)::int FROM chat_members WHERE user_id = $2) AS chats`,
          [chatId, userId],
        );
        const counts = rows[0] as { member: boolean; members: number; chats: number };
        if (counts.member) return 'already-member';
        if (counts.members >= limits.maxMembers) return 'chat-full';
        if (counts.chats >= limits.maxChatsPerUser) return 'user-full';
        await client.query('INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2)', [chatId, userId]);
        return 'added';
      });
    },

    /** Removes a member; false when they were not one. */
    async removeMember(chatId: string, userId: string): Promise<boolean> {
      const { rowCount } = await pool.query('DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2', [
        chatId,
        userId,
      ]);
      return rowCount === 1;
    },

    /**
     * Moves each chat's last activity (the chat list's order) up to its newest message of a
     * persisted batch, in one statement; never back, so retried or reordered batches are harmless.
     * Rows are locked in id order, so two workers' batches queue up rather than deadlock.
     */
    async advanceActivity(activity: { chatId: string; at: string; seq: number }[]): Promise<number> {
      if (activity.length === 0) return 0;
      // Each chat's newest message time and the highest seq the batch wrote: the batch read the
      // chat's lowest pending seqs, so PostgreSQL now holds every message up to that seq.
      const { rowCount } = await pool.query(
        `WITH wanted AS (
           SELECT chat_id, max(at) AS at, max(seq) AS seq
             FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS t(chat_id, at, seq) GROUP BY chat_id
         ), locked AS MATERIALIZED (
           SELECT c.id FROM chats c JOIN wanted w ON w.chat_id = c.id
            WHERE w.at > c.last_activity_at OR w.seq > c.persisted_seq ORDER BY c.id FOR NO KEY UPDATE OF c
         )
         UPDATE chats c SET last_activity_at = GREATEST(c.last_activity_at, w.at),
                            persisted_seq = GREATEST(c.persisted_seq, w.seq)
           FROM wanted w JOIN locked l ON l.id = w.chat_id
          WHERE c.id = w.chat_id AND (w.at > c.last_activity_at OR w.seq > c.persisted_seq)`,
        [activity.map((a) => a.chatId), activity.map((a) => a.at), activity.map((a) => a.seq)],
      );
      return rowCount ?? 0;
    },

    /** The chats of each of these users, in one query (a user in none is missing from the map). */
    async chatIdsOfUsers(userIds: string[]): Promise<Map<string, string[]>> {
      const { rows } = await pool.query<{ user_id: string; chat_ids: string[] }>(
        'SELECT user_id, array_agg(chat_id) AS chat_ids FROM chat_members WHERE user_id = ANY($1::text[]) GROUP BY user_id',
        [userIds],
      );
      return new Map(rows.map((r) => [r.user_id, r.chat_ids]));
    },

    /**
     * Each chat's title and members, with their names and stored read positions, in one query
     * (offline notifications, src/webhooks/notifications.ts); a chat that no longer exists is missing.
     */
    async audiences(chatIds: string[]): Promise<Map<string, ChatAudience>> {
      const { rows } = await pool.query<{
        chat_id: string;
        title: string | null;
        user_id: string;
        username: string;
        display_name: string;
        last_read_seq: number;
      }>(
        `SELECT c.id AS chat_id, c.title, m.user_id, u.username, u.display_name, m.last_read_seq
           FROM chats c JOIN chat_members m ON m.chat_id = c.id JOIN users u ON u.id = m.user_id
          WHERE c.id = ANY($1::uuid[])`,
        [chatIds],
      );
      const out = new Map<string, ChatAudience>();
      for (const r of rows) {
        let chat = out.get(r.chat_id);
        if (!chat) out.set(r.chat_id, (chat = { title: r.title, members: [] }));
        chat.members.push({
          userId: r.user_id,
          username: r.username,
          displayName: r.display_name,
          lastReadSeq: Number(r.last_read_seq),
        });
      }
      return out;
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
