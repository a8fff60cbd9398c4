-- The messages of a chat changed after a rev, up to a seq, for `sync` with {seq, rev}: each
-- message once, in its state now, in rev order.
-- KEYS[1] change index       chat:{id}:revs
-- KEYS[2] index floor        chat:{id}:revs:floor
-- KEYS[3] active list        chat:{id}:messages:active
-- KEYS[4] changed messages   chat:{id}:changed
-- KEYS[5] rev counter        chat:{id}:rev
-- KEYS[6] pending changes    chat:{id}:changes:pending
-- ARGV[1] the rev the client has seen
-- ARGV[2] the highest seq the client has seen (newer messages it gets as `message` frames)
-- ARGV[3] most messages to return
-- Returns {complete, rev now, {seq, json or ''}...}: complete is 1 when the index holds every change
-- after ARGV[1] (else the caller reads PostgreSQL too, and gets here, besides, every change after
-- ARGV[1] that PostgreSQL does not have yet: the index may have dropped it); json is '' for a
-- message Redis no longer holds (read it from PostgreSQL).
--@include message.lua
local since = tonumber(ARGV[1])
local upTo = tonumber(ARGV[2])
local floor = redis.call('GET', KEYS[2])
local complete = (floor and tonumber(floor) <= since) and 1 or 0
local out = {complete, tonumber(redis.call('GET', KEYS[5]) or '0')}
local seqs = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. since, '+inf', 'LIMIT', 0, tonumber(ARGV[3]))
for _, s in ipairs(seqs) do
  if tonumber(s) <= upTo then
    local _, listed = findInList(KEYS[3], tonumber(s))
    out[#out + 1] = s
    out[#out + 1] = listed or redis.call('HGET', KEYS[4], s) or ''
  end
end
if complete == 0 then
  -- PostgreSQL will answer for what the index dropped, but it lacks the changes still pending.
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. since, '+inf')) do
    if tonumber(s) <= upTo then
      local json = redis.call('HGET', KEYS[4], s)
      if json then
        out[#out + 1] = s
        out[#out + 1] = json
      end
    end
  end
end
return out
