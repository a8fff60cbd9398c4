-- Take tokens from a token bucket (the per-user send limit, shared by every api process).
-- KEYS[1] bucket hash   ratelimit:{userId}   fields: tokens (may be fractional), ts (ms)
-- ARGV[1] capacity: the most tokens the bucket holds (the burst)
-- ARGV[2] refill rate in tokens per second (> 0)
-- ARGV[3] tokens this call takes
-- Returns {1, 0} when the tokens were taken, {0, ms until they would be there} when refused.
-- The clock is Redis's own TIME, so api processes with skewed clocks share one bucket fairly.
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000)
-- 1e-9: float drift in the refill must not cost a whole token.
local allowed = tokens + 1e-9 >= cost
if allowed then tokens = tokens - cost end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
-- A bucket that would be full again carries no information: let it expire then.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
if allowed then return {1, 0} end
return {0, math.max(1, math.ceil((cost - tokens) * 1000 / rate - 1e-9))}
