-- Parley schema, version 1.
-- Every unique constraint on messages includes chat_id, so the table can later be partitioned or
-- distributed (Citus) by chat_id without changing a constraint.

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  username      text NOT NULL,
  display_name  text NOT NULL,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- Tokens are stored as SHA-256 digests only: a leaked table does not leak sessions.
CREATE TABLE sessions (
  token_hash bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE chats (
  id         uuid PRIMARY KEY,
  title      text,
  created_by uuid NOT NULL REFERENCES users (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Highest seq PostgreSQL holds for the chat (advanced by the persist worker; seeds counters).
  last_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE chat_members (
  chat_id       uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
  user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  joined_at     timestamptz NOT NULL DEFAULT now(),
  last_read_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user_id_idx ON chat_members (user_id);

-- No foreign keys here: this is the write-heavy table, rows arrive in batches from the persist
-- worker, and the api has already checked chat and membership before a message gets its seq.
CREATE TABLE messages (
  id            uuid NOT NULL,
  chat_id       uuid NOT NULL,
  seq           bigint NOT NULL,
  sender_id     uuid NOT NULL,
  body          text NOT NULL,
  client_msg_id text,
  created_at    timestamptz NOT NULL,
  -- The history index: paging by seq within a chat, both directions.
  PRIMARY KEY (chat_id, seq),
  UNIQUE (chat_id, sender_id, client_msg_id)
);
