-- Seed a chat's missing seq and rev counters so that they continue above everything already
-- issued.
-- KEYS[1] seq counter   chat:{id}:seq
-- KEYS[2] active list   chat:{id}:messages:active
-- KEYS[3] rev counter   chat:{id}:rev
-- KEYS[4] change index floor   chat:{id}:revs:floor   (seeded with the rev: no change after it is
--         anywhere but in Redis's change index)
-- ARGV[1] highest seq PostgreSQL holds for the chat (gap included when Redis may have issued more)
-- ARGV[2] highest rev PostgreSQL holds for the chat (likewise)
-- Returns the seq counter's value (unchanged when another process seeded it first).
--@include message.lua
local function seed(key, floor, fromList)
  local current = redis.call('GET', key)
  if current then return tonumber(current) end
  local last = redis.call('LINDEX', KEYS[2], -1)
  if last then
    local s = fromList(last)
    if s and s > floor then floor = s end
  end
  redis.call('SET', key, floor)
  return floor
end
-- The rev: no change in the list can be newer than the newest one in the changed hash or the
-- index, which live no longer than the list (they are seeded together).
local rev = seed(KEYS[3], tonumber(ARGV[2]), revOf)
redis.call('SET', KEYS[4], rev, 'NX')
return seed(KEYS[1], tonumber(ARGV[1]), seqOf)
