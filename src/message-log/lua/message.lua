-- What the scripts read from an encoded message (src/message-log/encoding.ts): its seq, and when
-- it was accepted. A pattern on a field name cannot match inside a string value, where every
-- quote is escaped. createdAt strings all come from Date#toISOString (fixed width, UTC), so
-- comparing them as strings compares the instants.
local function seqOf(m) return tonumber(string.match(m, '"seq":(%d+)')) end
local function createdAtOf(m) return string.match(m, '"createdAt":"([^"]+)"') or '' end
