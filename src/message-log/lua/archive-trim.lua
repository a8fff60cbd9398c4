-- The archive's trim and TTL step for one chat, atomic with respect to sends and the persist worker.
-- KEYS[1] active list   chat:{id}:messages:active
-- KEYS[2] pending set   chat:{id}:pending
-- KEYS[3] seq counter   chat:{id}:seq
-- KEYS[4] pending changes   chat:{id}:changes:pending
-- KEYS[5..] the chat's other lifecycle keys (rev counter, changed hash, change index, its floor),
--         which expire with the list
-- ARGV[1] most messages the list keeps (ACTIVE_LIST_MAX)
-- ARGV[2] age cutoff, ISO-8601 UTC: a message created before it leaves whatever the list's length
-- ARGV[3] checked seq: PostgreSQL was seen to hold every seq of the list from its head up to this
--         one (0 = none); nothing above it is trimmed, whatever the pending set says
-- ARGV[4] TTL in seconds for the chat's keys when nothing in them is pending (0 = leave TTLs alone)
-- Returns {messages trimmed, 1 when a TTL was set or already there else 0}.
--@include message.lua

local keep = tonumber(ARGV[1])
local cutoff = ARGV[2]
local limit = tonumber(ARGV[3]) + 1
local lowestPending = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if lowestPending and tonumber(lowestPending) < limit then limit = tonumber(lowestPending) end

local len = redis.call('LLEN', KEYS[1])
local trimmed = 0
while len > 0 do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if seqOf(head) >= limit then break end
  if len <= keep and createdAtOf(head) >= cutoff then break end
  redis.call('LPOP', KEYS[1])
  len = len - 1
  trimmed = trimmed + 1
end

-- A send PERSISTs these keys whenever it adds to the pending set, so a TTL set here can only run
-- out on keys whose every message PostgreSQL holds. NX: an idle chat's clock is not reset by
-- every run, so it really expires ACTIVE_TTL_S after it went idle.
local ttl = tonumber(ARGV[4])
local expiring = 0
if ttl > 0 and redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('EXPIRE', KEYS[1], ttl, 'NX')
  redis.call('EXPIRE', KEYS[3], ttl, 'NX')
  for i = 5, #KEYS do redis.call('EXPIRE', KEYS[i], ttl, 'NX') end
  expiring = 1
end
return {trimmed, expiring}
