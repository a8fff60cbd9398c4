-- Move a member's read position forward (never back), clamped to the chat's newest seq, and tell
-- the chat's other members when it moved.
-- KEYS[1] read positions    chat:{id}:reads   (hash: user id -> last read seq)
-- KEYS[2] seq counter       chat:{id}:seq
-- ARGV[1] user id
-- ARGV[2] the seq the user has read up to
-- ARGV[3] the user's position in PostgreSQL, or '' when not known (the hash may have expired)
-- ARGV[4] TTL of the hash, in seconds
-- ARGV[5] the chat's sharded channel (channel:chat-messages:{id}: the keys' slot, so SPUBLISH is
--         legal here on Redis Cluster too), or '' to move silently
-- ARGV[6] chat id (the payload is `kind SP chatId SP userId SP frame`, routed without parsing)
-- ARGV[7] the chat's newest seq per PostgreSQL, or '' (used only when the counter is missing: the
--         counter is never created here, seeding it is the send path's job)
-- ARGV[8] the payload's kind marker (`e`, a member's event)
-- ARGV[9] the user id as the payload carries it (percent-encoded: ids may hold spaces)
-- Returns {'OK', seq} (moved) | {'SAME', seq} (already there or further) | {'NOSEQ'} | {'NOREAD'}
local counter = redis.call('GET', KEYS[2])
if not counter then
  if ARGV[7] == '' then return {'NOSEQ'} end
  counter = ARGV[7]
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
local missing = not current
if missing then
  -- Without the stored position, moving "forward" could move back from what PostgreSQL holds.
  if ARGV[3] == '' then return {'NOREAD'} end
  current = ARGV[3]
end
current = tonumber(current)
local want = math.min(tonumber(ARGV[2]), tonumber(counter))
if want <= current then
  if missing then
    redis.call('HSET', KEYS[1], ARGV[1], current)
    redis.call('EXPIRE', KEYS[1], ARGV[4])
  end
  return {'SAME', current}
end
redis.call('HSET', KEYS[1], ARGV[1], want)
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[5] ~= '' then
  local frame = '{"type":"read","chatId":"' .. ARGV[6] .. '","userId":' .. cjson.encode(ARGV[1]) .. ',"seq":' .. want .. '}'
  redis.call('SPUBLISH', ARGV[5], ARGV[8] .. ' ' .. ARGV[6] .. ' ' .. ARGV[9] .. ' ' .. frame)
end
return {'OK', want}
