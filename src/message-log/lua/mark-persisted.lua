-- Record that PostgreSQL now holds some of a chat's messages, trim the active list to its bound
-- (removing only messages below the lowest seq still pending, so never an unpersisted one), and
-- hand the chat's persist ticket on.
-- KEYS[1] pending set      chat:{id}:pending
-- KEYS[2] active list      chat:{id}:messages:active
-- KEYS[3] persist ticket   chat:{id}:persist-ticket
-- ARGV[1] most messages the list keeps
-- ARGV[2] TTL in ms of the claim on the ticket for the chat's next job; 0 leaves the ticket alone
--         (the archive's reconciliation)
-- ARGV[3] the claim's token (unique per call; confirm-ticket.lua makes it the ticket)
-- ARGV[4..] the seqs just persisted
-- Returns {messages trimmed, 1 when messages are still pending and the caller holds the claim
-- for them (it must add the next persist job, then confirm the claim), else 0}.
--
-- The ticket: a send that finds none takes it and adds a persist job. A job releases it here
-- once nothing is pending, so the next send adds the next job; while anything is still pending
-- (sent while this batch was being written) the caller adds the next job itself. Between this
-- script and that job add it holds only a short claim, as a send does: a worker that dies in
-- between holds the chat's next job up for no longer than the claim, after which the next send
-- takes the ticket and adds the job.
--@include message.lua
for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end

local more = 0
local claimMs = tonumber(ARGV[2])
if claimMs > 0 then
  if redis.call('ZCARD', KEYS[1]) > 0 then
    redis.call('SET', KEYS[3], ARGV[3], 'PX', claimMs)
    more = 1
  else
    redis.call('DEL', KEYS[3])
  end
end

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
