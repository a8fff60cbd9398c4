-- chats.last_seq was to hold the highest seq PostgreSQL has for the chat, advanced by the persist
-- worker; nothing ever wrote or read it. A chat's seq is Redis's counter, seeded when missing from
-- what PostgreSQL knows: its messages' max(seq) and degraded_seq (src/services/seq-guard.ts).
ALTER TABLE chats DROP COLUMN last_seq;
