-- The chat list's order (GET /api/chats: most recent activity first, paged with a keyset cursor
-- on (last_activity_at, id)). A chat's activity is its creation until its first message, then the
-- creation time of its newest message in PostgreSQL: the persist worker's batch advances it with
-- one statement, and degraded-mode sends with the send. It only moves forward.
-- No index: a user's page sorts that user's memberships (bounded by CHATS_PER_USER_MAX), and an
-- index here would cost every batch's UPDATE its heap-only (HOT) path.
ALTER TABLE chats ADD COLUMN last_activity_at timestamptz;
-- Existing chats: their newest seq's time (one index probe per chat, not a scan of every message).
UPDATE chats c
   SET last_activity_at = GREATEST(c.created_at,
         (SELECT m.created_at FROM messages m WHERE m.chat_id = c.id ORDER BY m.seq DESC LIMIT 1));
ALTER TABLE chats
  ALTER COLUMN last_activity_at SET DEFAULT now(),
  ALTER COLUMN last_activity_at SET NOT NULL;
