-- What the scripts read from an encoded message (src/message-log/encoding.ts): its seq, its rev
-- and when it was accepted. A pattern on a field name cannot match inside a string value, where
-- every quote is escaped, and `"rev":N}` can only end the object. createdAt strings all come from
-- Date#toISOString (fixed width, UTC), so comparing them as strings compares the instants.
-- A message stored before messages had a rev has rev 0.
local function seqOf(m) return tonumber(string.match(m, '"seq":(%d+)')) end
local function revOf(m) return tonumber(string.match(m, '"rev":(%d+)}$') or '0') end
local function createdAtOf(m) return string.match(m, '"createdAt":"([^"]+)"') or '' end
-- The list index of the message with seq `s` (the list is ascending and, but across a Redis
-- outage, gapless: index = s - head), or nil when the list does not hold it; and its JSON.
local function findInList(list, s)
  local head = redis.call('LINDEX', list, 0)
  if not head then return nil, nil end
  local index = s - seqOf(head)
  if index < 0 then return nil, nil end
  local m = redis.call('LINDEX', list, index)
  if m and seqOf(m) == s then return index, m end
  local items = redis.call('LRANGE', list, 0, -1)
  for i, item in ipairs(items) do
    if seqOf(item) == s then return i - 1, item end
  end
  return nil, nil
end
