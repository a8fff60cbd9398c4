-- Record that PostgreSQL now holds some of a chat's messages, then trim the active list to its
-- bound, removing only messages below the lowest seq still pending (so never an unpersisted one).
-- KEYS[1] pending set   chat:{id}:pending
-- KEYS[2] active list   chat:{id}:messages:active
-- ARGV[1] most messages the list keeps
-- ARGV[2..] the seqs just persisted
-- Returns the number of messages trimmed.
for i = 2, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
local keep = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[2])
if len <= keep then return 0 end
local lowestPending = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
local limit = lowestPending and tonumber(lowestPending) or math.huge
local trimmed = 0
while len > keep do
  local head = redis.call('LINDEX', KEYS[2], 0)
  local s = tonumber(string.match(head, '"seq":(%d+)'))
  if s >= limit then break end
  redis.call('LPOP', KEYS[2])
  len = len - 1
  trimmed = trimmed + 1
end
return trimmed
