-- A worker's renewal of an instance it runs: a fresh TTL and the fields only the worker knows (node, host,
-- port; an empty value removes the field). An instance that expired or was deregistered is never brought back
-- as a bare hash: only the controller registers.
-- KEYS: 1 the instance hash   ARGV: 1 ttl ms, 2.. field, value pairs
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
