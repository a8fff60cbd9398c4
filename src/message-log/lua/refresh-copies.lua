-- Write messages' later states (from PostgreSQL: changed while Redis was unreachable) over the
-- older copies Redis holds, so that no change is computed from, or history shows, a stale copy.
-- KEYS[1] active list        chat:{id}:messages:active
-- KEYS[2] changed messages   chat:{id}:changed
-- KEYS[3] change index       chat:{id}:revs
-- KEYS[4] pending changes    chat:{id}:changes:pending
-- ARGV[1..] the messages' JSON (encoding.ts), each at its rev in PostgreSQL
-- A copy at the same or a later rev is left alone. Returns how many copies were replaced.
--@include message.lua
local replaced = 0
for i = 1, #ARGV do
  local json = ARGV[i]
  local seq, rev = seqOf(json), revOf(json)
  local index, listed = findInList(KEYS[1], seq)
  if listed and revOf(listed) < rev then
    redis.call('LSET', KEYS[1], index, json)
    replaced = replaced + 1
  end
  local copy = redis.call('HGET', KEYS[2], seq)
  if copy and revOf(copy) < rev then
    -- An older change still pending: PostgreSQL holds a later state already, nothing to write.
    redis.call('HDEL', KEYS[2], seq)
    redis.call('ZREM', KEYS[4], seq)
    replaced = replaced + 1
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('ZADD', KEYS[3], 'GT', rev, seq) end
end
return replaced
