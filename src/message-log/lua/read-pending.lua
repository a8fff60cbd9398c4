-- The messages a persist batch writes for one chat: the lowest pending seqs and their JSON.
-- KEYS[1] pending set   chat:{id}:pending
-- KEYS[2] active list   chat:{id}:messages:active
-- KEYS[3] persist ticket   chat:{id}:persist-ticket
-- KEYS[4] changed messages   chat:{id}:changed
-- KEYS[5] pending changes    chat:{id}:changes:pending
-- ARGV[1] most messages to return (and most changes)
-- ARGV[2] '1' to release the ticket when nothing is pending (the caller's job holds the chat and
--         lets it go: an append after this finds the ticket free and claims it), else '0'
-- Returns {{json, ...}, {orphan seq, ...}, {changed json, ...}}: the JSON of each pending seq the
-- list holds (ascending seq), the pending seqs it does not hold, and the state now of the messages
-- with the oldest pending changes (a change whose copy is gone is dropped from the pending set). A message leaves the list only once it is no longer
-- pending, so an orphan means its data is gone (Redis lost it): nothing can persist it any more.
--
-- The list is ascending by seq and, but across a Redis outage, gapless, so a seq's index is its
-- seq minus the head's: one LRANGE covers them. When that guess misses, the whole list is read.
--@include message.lua
local changes = {}
local changedSeqs = redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1)
if #changedSeqs > 0 then
  local jsons = redis.call('HMGET', KEYS[4], unpack(changedSeqs))
  for i, json in ipairs(jsons) do
    if json then changes[#changes + 1] = json else redis.call('ZREM', KEYS[5], changedSeqs[i]) end
  end
end

local seqs = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #seqs == 0 then
  if ARGV[2] == '1' and #changes == 0 then redis.call('DEL', KEYS[3]) end
  return {{}, {}, changes}
end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then return {{}, seqs, changes} end

local headSeq = seqOf(head)
local first, last = tonumber(seqs[1]), tonumber(seqs[#seqs])
local bySeq = {}
local function index(items)
  for _, m in ipairs(items) do bySeq[seqOf(m)] = m end
end
if last >= headSeq then
  local from = first - headSeq
  if from < 0 then from = 0 end
  index(redis.call('LRANGE', KEYS[2], from, last - headSeq))
end

local found, orphans, missed = {}, {}, false
for _, s in ipairs(seqs) do
  if not bySeq[tonumber(s)] then missed = true end
end
if missed then index(redis.call('LRANGE', KEYS[2], 0, -1)) end
for _, s in ipairs(seqs) do
  local m = bySeq[tonumber(s)]
  if m then found[#found + 1] = m else orphans[#orphans + 1] = s end
end
return {found, orphans, changes}
