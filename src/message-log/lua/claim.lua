-- Settle a claim on a chat's persist ticket once its job add succeeded or failed.
-- KEYS[1] persist ticket   chat:{id}:persist-ticket
-- ARGV[1] 'confirm' (the job was added: the short claim becomes the ticket) or 'release' (the
--         add failed: the ticket is free again, so the next send claims it and adds the job)
-- ARGV[2] the claim's token
-- ARGV[3] ticket TTL in ms (confirm)
-- Returns 1 when the ticket was still this claim's, else 0 (its job already ran and released it,
-- or the claim ran out and another took it): then it is left alone.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
if ARGV[1] == 'confirm' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
