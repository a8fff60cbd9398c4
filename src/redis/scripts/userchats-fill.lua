-- Writes a user's chat ids as read from PostgreSQL (the copy used while PostgreSQL is down),
-- unless a membership change of the user came in meanwhile.
-- KEYS[1] the copy          userchats:{id}          (JSON array of chat ids)
-- KEYS[2] version token     userchats:{id}:version  (replaced by cache-invalidate.lua)
-- ARGV[1] the token read before PostgreSQL was queried ('' when there was none)
-- ARGV[2] TTL of the copy in seconds
-- ARGV[3] the JSON
-- Returns 1 when written, 0 when a change came in between (nothing written).
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
return 1
