-- Seq safety across Redis outages and Redis data loss (docs/protocol.md: seqs are never reused).
ALTER TABLE chats
  -- Highest seq PostgreSQL allocated itself while Redis was unreachable (degraded mode).
  ADD COLUMN degraded_seq bigint NOT NULL DEFAULT 0,
  -- First seq of the current degraded run (its messages get idempotency keys in Redis on recovery).
  ADD COLUMN degraded_from bigint NOT NULL DEFAULT 0,
  -- True from a chat's first degraded send until Redis is back and its counter was raised past
  -- degraded_seq; the first degraded send of an outage jumps a gap above what Redis may have issued.
  ADD COLUMN degraded_open boolean NOT NULL DEFAULT false,
  -- Set on every chat when Redis is found to have lost its data: the next counter seed jumps a gap,
  -- so seqs Redis issued but never persisted are not issued again.
  ADD COLUMN reseed_gap boolean NOT NULL DEFAULT false;

CREATE INDEX chats_degraded_open_idx ON chats (id) WHERE degraded_open;
CREATE INDEX chats_reseed_gap_idx ON chats (id) WHERE reseed_gap;
