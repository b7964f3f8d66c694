-- Give the lease up only if it still holds this term's value (compare and DEL), so a standby need not wait
-- for the TTL after a clean stop.
-- KEYS: 1 the lease   ARGV: 1 the value the term holds it with
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
