-- Append one message to a chat's log: membership, idempotency, seq, append, pending, publish and
-- the persist-ticket claim, in one atomic step.
-- KEYS[1] seq counter       chat:{id}:seq
-- KEYS[2] active list       chat:{id}:messages:active
-- KEYS[3] member set        chat:{id}:members   ('' = loaded sentinel)
-- KEYS[4] idempotency key   chat:{id}:idem:{sender}:{clientMsgId}  (unused when ARGV[6] = '0')
-- KEYS[5] pending set       chat:{id}:pending
-- KEYS[6] read positions    chat:{id}:reads   (hash: user id -> last read seq)
-- KEYS[7] persist ticket    chat:{id}:persist-ticket
-- KEYS[8] sender's bucket   ratelimit:{senderId}   (unused when ARGV[11] = '0'; on Redis Cluster
--                           it is in another slot, so the caller takes the tokens itself)
-- KEYS[9] rev counter       chat:{id}:rev
-- ARGV[1] sender id
-- ARGV[2] message JSON up to and including `"seq":`
-- ARGV[3] message JSON after the seq, up to and including `"rev":` (the script ends it: rev .. '}')
-- ARGV[4] the chat's sharded channel (channel:chat-messages:{id}, the chat's hash slot)
-- ARGV[5] the payload's kind marker ('m': the payload is `m SP json`, so receivers route without parsing)
-- ARGV[6] '1' when the send carries a clientMsgId
-- ARGV[7] idempotency TTL in seconds
-- ARGV[8] TTL of the read-position hash in seconds
-- ARGV[9] TTL in ms of a claim on the persist ticket (until the caller's job add confirms it)
-- ARGV[10] the claim's token (unique per call)
-- ARGV[11] the per-user send bucket's capacity, or '0' when this call takes no token
-- ARGV[12] its refill rate in tokens per second
-- ARGV[13] the seq this message replies to, or '0' (it must be an issued seq of the chat)
-- Returns {'OK', seq, claimed} | {'DUP', json or '', claimed} | {'FORBIDDEN'} | {'NOMEMBERS'} |
-- {'NOSEQ'} | {'LIMITED', ms until a token} | {'BADREPLY'}
-- NOSEQ: the seq or the rev counter is missing (the caller seeds both).
-- claimed = 1 when this call took the chat's free persist ticket: the caller must add the chat's
-- persist job, then confirm the claim (persist-ticket.ts). Otherwise a job that has yet to read
-- the pending set holds the ticket and will write this message too. DUP's json is '' when the
-- original has left the active list (PostgreSQL holds it then). The send's token is taken once
-- the caches it needs are there (a NOMEMBERS or NOSEQ answer is retried, and must not cost twice)
-- and before anything else, so a refused send gets no seq and a flood of forbidden sends is
-- limited too.
--@include message.lua
--@include ../../redis/scripts/token-bucket.lua
if redis.call('EXISTS', KEYS[3]) == 0 then return {'NOMEMBERS'} end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[9]) == 0 then return {'NOSEQ'} end
if ARGV[11] ~= '0' then
  local allowed, wait = takeTokens(KEYS[8], tonumber(ARGV[11]), tonumber(ARGV[12]), 1)
  if not allowed then return {'LIMITED', wait} end
end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return {'FORBIDDEN'} end
if ARGV[6] == '1' then
  local previous = redis.call('GET', KEYS[4])
  if previous then
    -- The key holds the seq the first attempt got (one written before keys held seqs holds the
    -- message JSON itself). The message is in the active list while it is there.
    local pseq, json = previous, ''
    if string.sub(previous, 1, 1) == '{' then
      pseq, json = tostring(seqOf(previous)), previous
    else
      local head = redis.call('LINDEX', KEYS[2], 0)
      local index = head and tonumber(pseq) - seqOf(head) or -1
      -- Below the head: trimmed, so in PostgreSQL.
      if index >= 0 then
        local m = redis.call('LINDEX', KEYS[2], index)
        if not (m and seqOf(m) == tonumber(pseq)) then
          -- Not where a gapless list puts it (seqs were skipped across an outage): look through it.
          m = nil
          for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
            if seqOf(item) == tonumber(pseq) then m = item break end
          end
        end
        if m then json = m end
      end
    end
    -- Still unpersisted and no job on the way (e.g. the first attempt's job add failed): claim.
    local claimed = 0
    if redis.call('ZSCORE', KEYS[5], pseq) and redis.call('SET', KEYS[7], ARGV[10], 'NX', 'PX', ARGV[9]) then claimed = 1 end
    return {'DUP', json, claimed}
  end
end
local replyTo = tonumber(ARGV[13])
if replyTo > 0 and replyTo > tonumber(redis.call('GET', KEYS[1])) then return {'BADREPLY'} end
local seq = redis.call('INCR', KEYS[1])
-- Every change in a chat takes its next rev, a new message too.
local rev = redis.call('INCR', KEYS[9])
local json = ARGV[2] .. seq .. ARGV[3] .. rev .. '}'
redis.call('RPUSH', KEYS[2], json)
redis.call('ZADD', KEYS[5], seq, seq)
-- Keys holding unpersisted messages never expire (the archive may have set a TTL when idle).
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[9])
-- Only the seq: the message itself is in the list (and later PostgreSQL), not kept twice.
if ARGV[6] == '1' then redis.call('SET', KEYS[4], seq, 'EX', ARGV[7]) end
-- The sender has read up to their own message (it is the newest seq, so this only moves forward):
-- unreadCount counts other members' messages only.
redis.call('HSET', KEYS[6], ARGV[1], seq)
redis.call('EXPIRE', KEYS[6], ARGV[8])
redis.call('SPUBLISH', ARGV[4], ARGV[5] .. ' ' .. json)
local claimed = 0
if redis.call('SET', KEYS[7], ARGV[10], 'NX', 'PX', ARGV[9]) then claimed = 1 end
return {'OK', seq, claimed, rev}
