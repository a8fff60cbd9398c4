-- Confirm a persist ticket claim once its job is added: the short claim becomes a long ticket.
-- KEYS[1] persist ticket   chat:{id}:persist-ticket
-- ARGV[1] the claim's token (what send.lua or the archive set it to)
-- ARGV[2] ticket TTL in ms
-- Returns 1 when confirmed, 0 when the ticket is no longer this claim's (its job already ran and
-- released it, or the claim ran out and another took it): then it is left alone.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
