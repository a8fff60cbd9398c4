-- Seed a missing seq counter so that it continues above everything already issued.
-- KEYS[1] seq counter   chat:{id}:seq
-- KEYS[2] active list   chat:{id}:messages:active
-- ARGV[1] highest seq PostgreSQL holds for the chat
-- Returns the counter's value (unchanged when another process seeded it first).
--@include message.lua
local current = redis.call('GET', KEYS[1])
if current then return tonumber(current) end
local floor = tonumber(ARGV[1])
local last = redis.call('LINDEX', KEYS[2], -1)
if last then
  local s = seqOf(last)
  if s and s > floor then floor = s end
end
redis.call('SET', KEYS[1], floor)
return floor
