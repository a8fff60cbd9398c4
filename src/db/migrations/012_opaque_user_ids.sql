-- User ids become opaque text (docs/protocol.md "External identity"): a JWT's `sub` is the id of
-- the Parley user it names, any 1-255 printable characters without `/`, so an app adds members by
-- its own user ids. Parley's own users keep their UUIDs, now stored as their lower-case text (the
-- form every API already returned). Chat and message ids stay uuid.
--
-- Works on a database that already holds users, chats and messages: every column that holds a
-- user id changes type in place (its rows rewritten, its indexes rebuilt) in this migration's
-- transaction, with the foreign keys to users dropped first and added back after, under the same
-- names. ALTER TABLE takes each table's ACCESS EXCLUSIVE lock, so writers wait until the COMMIT
-- (the persist worker retries a failed batch; its rows stay in Redis meanwhile). The rewrite of
-- messages grows with the table: on a large one, run the migration at a quiet time.
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
ALTER TABLE chats DROP CONSTRAINT chats_created_by_fkey;
ALTER TABLE chat_members DROP CONSTRAINT chat_members_user_id_fkey;

ALTER TABLE users ALTER COLUMN id TYPE text USING id::text;
ALTER TABLE sessions ALTER COLUMN user_id TYPE text USING user_id::text;
ALTER TABLE chats ALTER COLUMN created_by TYPE text USING created_by::text;
ALTER TABLE chat_members ALTER COLUMN user_id TYPE text USING user_id::text;
-- Partitioned: the change reaches every partition, and the unique key (chat_id, sender_id,
-- client_msg_id) is rebuilt on each.
ALTER TABLE messages ALTER COLUMN sender_id TYPE text USING sender_id::text;

ALTER TABLE sessions
  ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE chats
  ADD CONSTRAINT chats_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id);
ALTER TABLE chat_members
  ADD CONSTRAINT chat_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

-- The contract's bound, kept by the database too: no id PostgreSQL stores can break a Redis key,
-- a pub/sub payload or a path.
ALTER TABLE users
  ADD CONSTRAINT users_id_shape CHECK (char_length(id) BETWEEN 1 AND 255 AND position('/' IN id) = 0);

-- Users created from a JWT have no password: their password_hash is this marker, which no
-- password verifies (passwords.ts accepts only scrypt$...), so they cannot log in with
-- POST /api/sessions; a JWT whose sub names a user with a password is refused (auth-service.ts).
COMMENT ON COLUMN users.password_hash IS 'scrypt$N$r$p$salt$hash, or ''external'' for a user created from a JWT';
