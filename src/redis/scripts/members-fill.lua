-- Writes a chat's member set as read from PostgreSQL, unless its membership changed meanwhile.
-- KEYS[1] member set      chat:{id}:members          ('' = loaded sentinel, added here)
-- KEYS[2] version token   chat:{id}:members-version  (replaced by cache-invalidate.lua)
-- ARGV[1] the token read before PostgreSQL was queried ('' when there was none)
-- ARGV[2] TTL of the set in seconds
-- ARGV[3..] the member ids
-- Returns 1 when written, 0 when a change came in between: then nothing is written, since the
-- ids may predate the change, and the next reader loads again.
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '')
-- In slices: unpack of too many values at once overflows Lua's stack.
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
