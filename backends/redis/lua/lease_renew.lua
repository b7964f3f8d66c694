-- Extend the lease only if it still holds this term's value (compare and PEXPIRE).
-- KEYS: 1 the lease   ARGV: 1 the value the term holds it with, 2 ttl ms
-- Returns 1 when renewed, 0 when the lease expired or another term holds it.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
