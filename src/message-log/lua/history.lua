-- Read a page of the active list by seq, without parsing messages beyond their seq.
-- KEYS[1] active list   chat:{id}:messages:active
-- KEYS[2] seq counter   chat:{id}:seq
-- ARGV[1] 'after' (seq > bound, ascending from bound) | 'before' (seq < bound, the newest ones)
-- ARGV[2] bound seq ('before' with no bound reads the newest messages)
-- ARGV[3] how many messages at most
-- Returns {head seq, complete, counter, json...}: head is the list's first seq (0 when empty);
-- complete is 1 when the list holds every seq from head to the counter, so that the caller can
-- trust it alone for that range.
--@include message.lua
local len = redis.call('LLEN', KEYS[1])
local counter = tonumber(redis.call('GET', KEYS[2]) or '-1')
if len == 0 then return {0, 0, counter} end
local head = seqOf(redis.call('LINDEX', KEYS[1], 0))
local tail = seqOf(redis.call('LINDEX', KEYS[1], -1))
local complete = (tail - head + 1 == len and tail == counter) and 1 or 0
local mode, bound, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {head, complete, counter}

if tail - head + 1 == len then
  -- Contiguous: list index = seq - head.
  local from, to
  if mode == 'after' then
    from = math.max(bound + 1, head) - head
    to = math.min(from + n - 1, len - 1)
  else
    to = math.min(bound - 1, tail) - head
    from = math.max(0, to - n + 1)
  end
  if from <= to and to >= 0 and from < len then
    for _, m in ipairs(redis.call('LRANGE', KEYS[1], from, to)) do out[#out + 1] = m end
  end
  return out
end

-- Not contiguous (seqs were skipped across a Redis outage): filter the whole list.
local all = redis.call('LRANGE', KEYS[1], 0, -1)
local picked = {}
for _, m in ipairs(all) do
  local s = seqOf(m)
  if (mode == 'after' and s > bound) or (mode ~= 'after' and s < bound) then picked[#picked + 1] = m end
end
local first, last = 1, #picked
if mode == 'after' then last = math.min(#picked, n) else first = math.max(1, #picked - n + 1) end
for i = first, last do out[#out + 1] = picked[i] end
return out
