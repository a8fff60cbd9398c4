-- Message lifecycle (docs/protocol.md): replies, edits, deletes (tombstones), reactions, and each
-- chat's revision counter: every change in a chat, a new message too, takes the chat's next rev,
-- and a message carries the rev of its last change.
ALTER TABLE messages
  ADD COLUMN reply_to   bigint,
  ADD COLUMN edited_at  timestamptz,
  ADD COLUMN deleted_at timestamptz,
  -- [{emoji, count, userIds}] in the order each emoji was first used; every reactor is kept.
  ADD COLUMN reactions  jsonb NOT NULL DEFAULT '[]',
  -- Messages stored before revs existed have rev 0.
  ADD COLUMN rev        bigint NOT NULL DEFAULT 0;
-- `sync` with {seq, rev}: a chat's messages changed after a rev, when Redis no longer indexes them.
CREATE INDEX messages_chat_rev_idx ON messages (chat_id, rev);

ALTER TABLE chats
  -- Every message of the chat up to this seq is in PostgreSQL (advanced by the persist worker's
  -- batches and by degraded-mode sends; announced to members as `persisted` frames).
  ADD COLUMN persisted_seq bigint NOT NULL DEFAULT 0,
  -- Highest rev PostgreSQL allocated itself while Redis was unreachable (degraded mode), as
  -- degraded_seq is for seqs.
  ADD COLUMN degraded_rev bigint NOT NULL DEFAULT 0,
  -- First rev of the current degraded run: the messages changed in it (rev at or above this) are
  -- written over Redis's older copies when the run closes.
  ADD COLUMN degraded_rev_from bigint NOT NULL DEFAULT 0;
UPDATE chats c SET persisted_seq = COALESCE((SELECT max(m.seq) FROM messages m WHERE m.chat_id = c.id), 0);

-- When an api process last found Redis back after an outage (set before its circuit closes). A
-- process that has not noticed yet must not open a new degraded run on a chat for a moment
-- after it: its seqs and revs, a gap higher, would overtake what Redis issues meanwhile.
CREATE TABLE redis_recoveries (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  at       timestamptz NOT NULL
);
