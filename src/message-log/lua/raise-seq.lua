-- Raise a chat's existing seq and rev counters to at least some values (after seqs and revs were
-- allocated in PostgreSQL during a Redis outage). A missing counter is left missing: its next
-- seed reads PostgreSQL.
-- KEYS[1] seq counter   chat:{id}:seq
-- KEYS[2] rev counter   chat:{id}:rev
-- KEYS[3] change index floor   chat:{id}:revs:floor   (raised too: the changes PostgreSQL took
--         during the outage are not in Redis's index, so a sync from below them reads PostgreSQL)
-- ARGV[1] the lowest value the seq counter may have
-- ARGV[2] the lowest value the rev counter may have
-- Returns the seq counter's value, or -1 when it is missing.
local function raise(key, floor)
  local current = redis.call('GET', key)
  if not current then return -1 end
  if tonumber(current) < floor then
    redis.call('SET', key, floor, 'KEEPTTL')
    return floor
  end
  return tonumber(current)
end
if raise(KEYS[2], tonumber(ARGV[2])) ~= -1 then
  local floor = redis.call('GET', KEYS[3])
  if not floor or tonumber(floor) < tonumber(ARGV[2]) then redis.call('SET', KEYS[3], ARGV[2], 'KEEPTTL') end
end
return raise(KEYS[1], tonumber(ARGV[1]))
