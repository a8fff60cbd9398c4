-- Record that some of a user's connections are alive (a new connection, or a heartbeat).
-- KEYS[1] presence key      presence:{userId}         (string, value = last seen ms; TTL = newest expiry)
-- KEYS[2] connection set    presence:{userId}:conns   (sorted set: connection id -> expiry ms)
-- ARGV[1] TTL of a connection without a heartbeat, in ms
-- ARGV[2] how long the set outlives its newest entry, in ms (so that a late sweep still sees it)
-- ARGV[3] most live connections the user may hold, 0 for no limit (heartbeats); with a limit,
--         ARGV[4] is one new connection, refused when the user already holds that many
-- ARGV[4..] connection ids
-- Returns {1 when the user just came online else 0, now ms, newest expiry ms},
-- or {-1, now ms, live connections} when the new connection was refused.
-- "Online" is "the set is not empty": an entry that expired but was not swept yet still counts,
-- so that online and offline transitions strictly alternate (each one is reported exactly once).
-- The limit counts only live entries: a killed process's connections stop counting once expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[3])
if max > 0 and not redis.call('ZSCORE', KEYS[2], ARGV[4]) then
  local live = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
  if live >= max then return {-1, now, live} end
end
local before = redis.call('ZCARD', KEYS[2])
for i = 4, #ARGV do redis.call('ZADD', KEYS[2], now + ttl, ARGV[i]) end
local newest = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
redis.call('SET', KEYS[1], now, 'PXAT', newest)
redis.call('PEXPIREAT', KEYS[2], newest + tonumber(ARGV[2]))
return {before == 0 and 1 or 0, now, newest}
