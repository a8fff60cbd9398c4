-- The worker purges expired sessions in batches (workers/session-purge.ts): each batch finds the
-- oldest expired rows through this index instead of scanning every session.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
