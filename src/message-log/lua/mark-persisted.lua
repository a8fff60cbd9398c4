-- Record that PostgreSQL now holds some of a chat's messages, trim the active list to its bound
-- (removing only messages below the lowest seq still pending, so never an unpersisted one), and
-- settle the chat's persist ticket.
-- KEYS[1] pending set      chat:{id}:pending
-- KEYS[2] active list      chat:{id}:messages:active
-- KEYS[3] persist ticket   chat:{id}:persist-ticket
-- KEYS[4] changed messages chat:{id}:changed
-- KEYS[5] pending changes  chat:{id}:changes:pending
-- KEYS[6] seq counter      chat:{id}:seq
-- ARGV[1] most messages the list keeps
-- ARGV[2] 'keep': the caller's job holds the chat: renew the ticket for ARGV[3] ms (the job reads
--         the chat again next batch, and lets it go when that read finds nothing pending,
--         read-pending.lua); 'leave': the ticket is left alone (the archive's reconciliation)
-- ARGV[3] ticket TTL in ms ('keep')
-- ARGV[4] how many seqs follow (n)
-- ARGV[5..4+n] the seqs just persisted
-- ARGV[5+n..] pairs (seq, rev): changes just persisted; each leaves the pending changes (and its
--             copy the changed hash) only if no later change of the message came meanwhile
-- Returns {messages trimmed, 1 when messages or changes are still pending else 0, persisted seq}:
-- PostgreSQL holds every message of the chat up to the persisted seq (the one below the lowest
-- pending seq, or the counter when nothing is pending: every seq issued is then written).
--@include message.lua
local n = tonumber(ARGV[4])
for i = 5, 4 + n do redis.call('ZREM', KEYS[1], ARGV[i]) end
for i = 5 + n, #ARGV, 2 do
  local s, rev = ARGV[i], tonumber(ARGV[i + 1])
  if tonumber(redis.call('ZSCORE', KEYS[5], s) or '-1') == rev then redis.call('ZREM', KEYS[5], s) end
  local copy = redis.call('HGET', KEYS[4], s)
  if copy and revOf(copy) == rev then redis.call('HDEL', KEYS[4], s) end
end

local more = (redis.call('ZCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[5]) > 0) and 1 or 0
local lowest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
local persisted = lowest and tonumber(lowest) - 1 or tonumber(redis.call('GET', KEYS[6]) or '0')
if ARGV[2] == 'keep' then redis.call('SET', KEYS[3], 'held', 'PX', ARGV[3]) end

local keep = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[2])
if len <= keep then return {0, more, persisted} end
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
return {trimmed, more, persisted}
