-- A token bucket in a hash (fields: tokens, which may be fractional, and ts in ms), on Redis's own
-- clock, so that api processes with skewed clocks share one bucket fairly.
-- takeTokens(key, capacity, rate per second (> 0), cost) returns true when the tokens were taken,
-- else false and the ms until they would be there.
local function takeTokens(key, capacity, rate, cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000)
  -- 1e-9: float drift in the refill must not cost a whole token.
  local allowed = tokens + 1e-9 >= cost
  if allowed then tokens = tokens - cost end
  redis.call('HSET', key, 'tokens', tokens, 'ts', now)
  -- A bucket that would be full again carries no information: let it expire then.
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens) * 1000 / rate) + 1000)
  if allowed then return true, 0 end
  return false, math.max(1, math.ceil((cost - tokens) * 1000 / rate - 1e-9))
end
