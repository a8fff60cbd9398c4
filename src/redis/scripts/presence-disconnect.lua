-- Forget a closed connection and every connection whose heartbeats stopped (its process died),
-- and report the offline transition when that leaves the user with none.
-- KEYS[1] presence key      presence:{userId}
-- KEYS[2] connection set    presence:{userId}:conns   (connection id -> expiry ms)
-- KEYS[3] last-seen key     presence:{userId}:seen    (ms, kept while PostgreSQL catches up)
-- ARGV[1] TTL of a connection without a heartbeat, in ms
-- ARGV[2] TTL of the last-seen key, in ms
-- ARGV[3] the closed connection's id, or '' for a sweep (expired entries only)
-- Returns {1 when the user just went offline else 0, last seen ms, newest remaining expiry ms (0 if none)}.
-- Only the call that empties a non-empty set reports offline, so concurrent closes and sweeps
-- on any number of processes report it exactly once.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = redis.call('ZCARD', KEYS[2])
if before == 0 then return {0, 0, 0} end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES')
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) > 0 then
  local newest = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
  if ARGV[3] ~= '' then redis.call('SET', KEYS[1], now, 'PXAT', newest) end
  return {0, 0, newest}
end
-- A close was seen now; a sweep only knows the last heartbeat (expiry minus TTL) of what it removed.
local seen = now
if ARGV[3] == '' and #expired > 0 then
  local latest = 0
  for i = 2, #expired, 2 do latest = math.max(latest, tonumber(expired[i])) end
  seen = math.min(now, latest - tonumber(ARGV[1]))
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], seen, 'PX', ARGV[2])
return {1, seen, 0}
