-- A fixed-window counter (abuse limits: logins, registrations, chat creation, member adds),
-- shared by every api process.
-- KEYS[1] counter   limit:{rule:id}   (an integer that expires with its window)
-- ARGV[1] the most the window allows
-- ARGV[2] window length in ms
-- ARGV[3] cost of this call; 0 only checks; below 0 gives back (a login counted as failed in
--         advance that did not fail): never below 0, and an expired counter is not recreated
-- ARGV[4] '1' to count even when over the limit (a failed login is counted whatever happens)
-- Returns {1 when allowed else 0, the count after this call, ms until the window ends}.
-- Allowed means the count stays within the limit (a check: it is still below it).
local limit, cost = tonumber(ARGV[1]), tonumber(ARGV[3])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowed
if cost == 0 then allowed = count < limit else allowed = count + cost <= limit end
if cost > 0 and (allowed or ARGV[4] == '1') then
  count = redis.call('INCRBY', KEYS[1], cost)
  -- NX: the window starts with its first hit and is not stretched by later ones.
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
elseif cost < 0 and count > 0 then
  count = redis.call('DECRBY', KEYS[1], math.min(-cost, count))
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[2]) end
return {allowed and 1 or 0, count, ttl}
