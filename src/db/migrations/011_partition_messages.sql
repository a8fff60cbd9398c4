-- messages, hash-partitioned by chat_id into 16 partitions (docs/architecture.md, "PostgreSQL past
-- one node"). It is the only table that grows with messages: a reaction lives in its message's row,
-- and users, sessions, chats and chat_members grow with users and chats. Every query on it names
-- the chat, so each one reads one partition (an index of 1/16 the size, vacuumed on its own), and
-- the same table distributes on chat_id (Citus) without another change to its columns or keys.
--
-- Works on a database that already holds messages: the rows are copied into the partitioned table
-- in this migration's transaction, then the old table is dropped and the new one takes its name,
-- constraint and index names. The lock below comes first, so no write can land in the old table
-- after the copy read it; writers wait until the COMMIT (the persist worker retries a failed
-- batch, and its rows stay in Redis until it succeeds). The wait grows with the table: on a large
-- one, run the migration at a quiet time.
LOCK TABLE messages IN ACCESS EXCLUSIVE MODE;

-- The columns of migrations 001 and 010, in the same order, with the same types and defaults.
CREATE TABLE messages_partitioned (
  id            uuid NOT NULL,
  chat_id       uuid NOT NULL,
  seq           bigint NOT NULL,
  sender_id     uuid NOT NULL,
  body          text NOT NULL,
  client_msg_id text,
  created_at    timestamptz NOT NULL,
  reply_to      bigint,
  edited_at     timestamptz,
  deleted_at    timestamptz,
  reactions     jsonb NOT NULL DEFAULT '[]',
  rev           bigint NOT NULL DEFAULT 0
) PARTITION BY HASH (chat_id);

-- messages_p00 .. messages_p15. A hash partition's bounds are (modulus, remainder); more
-- partitions later means a new table and a copy like this one (or Citus, which splits shards).
DO $$
BEGIN
  FOR r IN 0..15 LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF messages_partitioned FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
                   'messages_p' || lpad(r::text, 2, '0'), r);
  END LOOP;
END $$;

-- Copied before the indexes exist (one sorted build each instead of a row-by-row insert into
-- three), in (chat_id, seq) order so a chat's history pages read neighbouring heap pages.
INSERT INTO messages_partitioned
       (id, chat_id, seq, sender_id, body, client_msg_id, created_at, reply_to, edited_at, deleted_at, reactions, rev)
SELECT id, chat_id, seq, sender_id, body, client_msg_id, created_at, reply_to, edited_at, deleted_at, reactions, rev
  FROM messages
 ORDER BY chat_id, seq;

DROP TABLE messages;
ALTER TABLE messages_partitioned RENAME TO messages;

-- The same keys under the same names as before. Each includes chat_id, the partition key, as a
-- unique index on a partitioned table must: each partition enforces it for its own chats, which
-- is all of each key's rows. The batch INSERT's ON CONFLICT DO NOTHING (no conflict target) takes
-- both, as it did on the plain table.
ALTER TABLE messages
  ADD CONSTRAINT messages_pkey PRIMARY KEY (chat_id, seq),
  ADD CONSTRAINT messages_chat_id_sender_id_client_msg_id_key UNIQUE (chat_id, sender_id, client_msg_id);
CREATE INDEX messages_chat_rev_idx ON messages (chat_id, rev);

-- Fresh statistics for the partitions the copy filled (autovacuum would get there, later).
ANALYZE messages;
