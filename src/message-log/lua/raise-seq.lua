-- Raise an existing seq counter to at least a value (after seqs were allocated in PostgreSQL
-- during a Redis outage). A missing counter is left missing: its next seed reads PostgreSQL.
-- KEYS[1] seq counter   chat:{id}:seq
-- ARGV[1] the lowest value the counter may have
-- Returns the counter's value, or -1 when it is missing.
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
local floor = tonumber(ARGV[1])
if tonumber(current) < floor then
  redis.call('SET', KEYS[1], floor, 'KEEPTTL')
  return floor
end
return tonumber(current)
