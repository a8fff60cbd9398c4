-- The state now of one message of a chat's log, if Redis holds it, for a member about to change it.
-- KEYS[1] active list        chat:{id}:messages:active
-- KEYS[2] changed messages   chat:{id}:changed
-- KEYS[3] member set         chat:{id}:members   ('' = loaded sentinel)
-- ARGV[1] the message's seq
-- ARGV[2] the reader's user id
-- Returns {'OK', json or ''} ('' when neither the list nor the changed hash holds it: PostgreSQL
-- does) | {'FORBIDDEN'} | {'NOMEMBERS'}
--@include message.lua
if redis.call('EXISTS', KEYS[3]) == 0 then return {'NOMEMBERS'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 then return {'FORBIDDEN'} end
local _, listed = findInList(KEYS[1], tonumber(ARGV[1]))
return {'OK', listed or redis.call('HGET', KEYS[2], ARGV[1]) or ''}
