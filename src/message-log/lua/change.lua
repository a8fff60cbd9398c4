-- Apply one change (an edit, a delete, a reaction) to a message of a chat's log: membership,
-- idempotency, the send token, a check that the message is still as the caller saw it, the chat's
-- next rev, the new state in place, the change pending for PostgreSQL, publish and the
-- persist-ticket claim, in one atomic step. The caller computes the new state from the current
-- one (permissions, tombstones, reactions: message-log.ts); this script only checks that nothing
-- changed in between (the rev) and commits it.
-- KEYS[1] member set        chat:{id}:members   ('' = loaded sentinel)
-- KEYS[2] rev counter       chat:{id}:rev
-- KEYS[3] active list       chat:{id}:messages:active
-- KEYS[4] changed messages  chat:{id}:changed   (hash: seq -> current JSON, while its change is
--                           not yet in PostgreSQL)
-- KEYS[5] pending changes   chat:{id}:changes:pending   (sorted set: seq scored by its rev)
-- KEYS[6] change index      chat:{id}:revs   (sorted set: seq scored by the rev of its last change)
-- KEYS[7] index floor       chat:{id}:revs:floor   (the index holds every change after this rev)
-- KEYS[8] idempotency key   chat:{id}:idem:{actor}:{clientMsgId}  (unused when ARGV[8] = '0')
-- KEYS[9] persist ticket    chat:{id}:persist-ticket
-- KEYS[10] actor's bucket   ratelimit:{actorId}   (unused when ARGV[12] = '0')
-- KEYS[11] seq counter      chat:{id}:seq
-- ARGV[1] actor id
-- ARGV[2] seq of the message
-- ARGV[3] the rev of the state the new one was computed from
-- ARGV[4] the new state's JSON up to and including `"rev":` (the script ends it: rev .. '}'), or ''
--         when the change changes nothing (reacting twice, deleting a tombstone): only the checks
-- ARGV[5] the message as PostgreSQL holds it, when Redis has no copy ('' when not read)
-- ARGV[6] the chat's sharded channel (channel:chat-messages:{id}, the chat's hash slot)
-- ARGV[7] the payload's kind marker ('u': the payload is `u SP json`)
-- ARGV[8] '1' when the change carries a clientMsgId
-- ARGV[9] idempotency TTL in seconds
-- ARGV[10] TTL in ms of a claim on the persist ticket
-- ARGV[11] the claim's token
-- ARGV[12] the actor's bucket capacity, or '0' when this call takes no token
-- ARGV[13] its refill rate in tokens per second
-- ARGV[14] most entries the change index keeps
-- Returns {'OK', rev, claimed, json} | {'NOOP', json} | {'DUP', seq, json or ''} | {'STALE', json} | {'NOTLOADED'} |
-- {'FORBIDDEN'} | {'NOMEMBERS'} | {'NOSEQ'} | {'LIMITED', ms until a token}
-- STALE: the message changed since the caller read it; json is its state now (compute again).
-- NOTLOADED: neither the list nor the changed hash holds it: read it from PostgreSQL and call
-- again with it (ARGV[5]). DUP: the clientMsgId was used before, for the message at `seq`, whose
-- state now is json ('' when Redis has no copy).
--@include message.lua
--@include ../../redis/scripts/token-bucket.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOMEMBERS'} end
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[11]) == 0 then return {'NOSEQ'} end
if ARGV[12] ~= '0' then
  local allowed, wait = takeTokens(KEYS[10], tonumber(ARGV[12]), tonumber(ARGV[13]), 1)
  if not allowed then return {'LIMITED', wait} end
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return {'FORBIDDEN'} end

local seq = tonumber(ARGV[2])
local function current(s)
  local changed = redis.call('HGET', KEYS[4], s)
  local index, listed = findInList(KEYS[3], s)
  -- The list is changed in place, so when it holds the message both copies agree.
  return listed or changed, index
end

if ARGV[8] == '1' then
  local previous = redis.call('GET', KEYS[8])
  if previous then
    -- 'c<seq>' for a change, a plain seq for a send with the same clientMsgId.
    local pseq = tonumber(string.match(previous, '(%d+)$'))
    local json = current(pseq)
    return {'DUP', pseq, json or ''}
  end
end

local cur, index = current(seq)
if not cur then
  if ARGV[5] == '' then return {'NOTLOADED'} end
  cur = ARGV[5]
end
if revOf(cur) ~= tonumber(ARGV[3]) then return {'STALE', cur} end
if ARGV[4] == '' then return {'NOOP', cur} end

local rev = redis.call('INCR', KEYS[2])
local json = ARGV[4] .. rev .. '}'
if index then redis.call('LSET', KEYS[3], index, json) end
redis.call('HSET', KEYS[4], seq, json)
redis.call('ZADD', KEYS[5], rev, seq)
redis.call('SET', KEYS[7], rev - 1, 'NX')
redis.call('ZADD', KEYS[6], rev, seq)
local over = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[14])
if over > 0 then
  -- The oldest entries go; the floor rises past them (a sync from below it reads PostgreSQL).
  local dropped = redis.call('ZPOPMIN', KEYS[6], over)
  redis.call('SET', KEYS[7], dropped[#dropped])
end
-- Keys holding unpersisted changes never expire (the archive may have set a TTL when idle).
for i = 2, 7 do redis.call('PERSIST', KEYS[i]) end
if ARGV[8] == '1' then redis.call('SET', KEYS[8], 'c' .. seq, 'EX', ARGV[9]) end
redis.call('SPUBLISH', ARGV[6], ARGV[7] .. ' ' .. json)
local claimed = 0
if redis.call('SET', KEYS[9], ARGV[11], 'NX', 'PX', ARGV[10]) then claimed = 1 end
return {'OK', rev, claimed, json}
