-- The index of users who may be online, scored by when their last connection expires, so that a
-- sweep finds users whose connections all stopped heartbeating (a killed api process) without a SCAN.
-- KEYS[1] index             presence-index   (sorted set: user id -> newest expiry ms)
-- ARGV[1] operation:
--   'bump'  ARGV[2] user id, ARGV[3] TTL ms: raise the score to now + TTL (before connecting)
--   'raise' ARGV[2] user id, ARGV[3] expiry ms: raise the score to that expiry (after a sweep)
--   'drop'  ARGV[2] user id: remove the user if their score has passed (nothing renewed it)
--   'due'   ARGV[2] most ids: the users whose score has passed
-- Returns 1/0 for bump, raise and drop; a list of user ids for due.
-- Scores only ever rise (ZADD GT), so a bump racing a sweep is never undone.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
if op == 'bump' then
  return redis.call('ZADD', KEYS[1], 'GT', 'CH', now + tonumber(ARGV[3]), ARGV[2])
elseif op == 'raise' then
  return redis.call('ZADD', KEYS[1], 'GT', 'CH', tonumber(ARGV[3]), ARGV[2])
elseif op == 'drop' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if score and tonumber(score) <= now then return redis.call('ZREM', KEYS[1], ARGV[2]) end
  return 0
elseif op == 'due' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
end
return redis.error_reply('unknown presence-index operation')
