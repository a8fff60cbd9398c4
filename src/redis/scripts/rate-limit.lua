-- Take tokens from a token bucket (the per-user send limit, shared by every api process), where
-- the append script cannot do it itself (on Redis Cluster the user's bucket is in another slot).
-- KEYS[1] bucket hash   ratelimit:{userId}
-- ARGV[1] capacity: the most tokens the bucket holds (the burst)
-- ARGV[2] refill rate in tokens per second (> 0)
-- ARGV[3] tokens this call takes
-- Returns {1, 0} when the tokens were taken, {0, ms until they would be there} when refused.
--@include token-bucket.lua
local allowed, wait = takeTokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if allowed then return {1, 0} end
return {0, wait}
