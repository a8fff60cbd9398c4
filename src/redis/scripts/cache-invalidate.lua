-- Forgets a cached copy of PostgreSQL data (a chat's member set, a user's chat ids) and replaces
-- its version token, so that a fill that read PostgreSQL before this call writes nothing
-- (members-fill.lua, userchats-fill.lua). Membership changes call it before and after their commit.
-- KEYS[1] the cached copy     chat:{id}:members       | userchats:{id}
-- KEYS[2] its version token   chat:{id}:members-version | userchats:{id}:version
-- ARGV[1] the new token (unique per call)
-- ARGV[2] TTL of the cached copy in seconds; the token lives at least as long, and never less
--         than 10 minutes: were it gone before a fill that read "no token" ahead of this change
--         finished, that fill would find "no token" again and take the change for none.
-- Returns 1.
redis.call('SET', KEYS[2], ARGV[1], 'EX', math.max(tonumber(ARGV[2]), 600))
redis.call('DEL', KEYS[1])
return 1
