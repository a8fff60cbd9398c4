-- Record that PostgreSQL now holds some of a chat's messages, trim the active list to its bound
-- (removing only messages below the lowest seq still pending, so never an unpersisted one), and
-- settle the chat's persist ticket.
-- KEYS[1] pending set      chat:{id}:pending
-- KEYS[2] active list      chat:{id}:messages:active
-- KEYS[3] persist ticket   chat:{id}:persist-ticket
-- ARGV[1] most messages the list keeps
-- ARGV[2] 'keep': the caller's job holds the chat: renew the ticket for ARGV[3] ms (the job reads
--         the chat again next batch, and lets it go when that read finds nothing pending,
--         read-pending.lua); 'leave': the ticket is left alone (the archive's reconciliation)
-- ARGV[3] ticket TTL in ms ('keep')
-- ARGV[4..] the seqs just persisted
-- Returns {messages trimmed, 1 when messages are still pending, else 0}.
--@include message.lua
for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end

local more = redis.call('ZCARD', KEYS[1]) > 0 and 1 or 0
if ARGV[2] == 'keep' then redis.call('SET', KEYS[3], 'held', 'PX', ARGV[3]) end

local keep = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[2])
if len <= keep then return {0, more} end
local lowestPending = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
local limit = lowestPending and tonumber(lowestPending) or math.huge
local trimmed = 0
while len > keep do
  local head = redis.call('LINDEX', KEYS[2], 0)
  local s = seqOf(head)
  if s >= limit then break end
  redis.call('LPOP', KEYS[2])
  len = len - 1
  trimmed = trimmed + 1
end
return {trimmed, more}
