-- Note that a member is typing and tell the chat's other members, at most once per throttle window.
-- KEYS[1] typing key        chat:{id}:typing:{userId}        (expires by itself after a few seconds)
-- KEYS[2] throttle key      chat:{id}:typing:{userId}:gate   (SET NX PX: one forward per window)
-- ARGV[1] TTL of the typing key, in ms
-- ARGV[2] throttle window, in ms
-- ARGV[3] the chat's sharded channel (channel:chat-messages:{id}: the keys' slot, so SPUBLISH is
--         legal here on Redis Cluster too)
-- ARGV[4] payload (`e SP chatId SP userId SP frame`)
-- Returns 1 when forwarded, 0 when thinned out.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('SPUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0
