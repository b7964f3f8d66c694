-- Register one service of an instance: the instance hash (deployment fields, passing, its service names)
-- gets a fresh TTL, and the name and key indexes list it. An instance that moved to another key leaves the
-- old key's index.
-- KEYS: 1 the instance hash, 2 the service-name index, 3 the key index
-- ARGV: 1 instance id, 2 ttl ms, 3 namespace prefix, 4 service name, 5 deployment key, 6.. field, value pairs
local old_key = redis.call('HGET', KEYS[1], 'deployment_key')
if old_key and old_key ~= ARGV[5] then
  redis.call('SREM', ARGV[3] .. 'registry:key:' .. old_key, ARGV[1])
end
redis.call('HSET', KEYS[1], 'service:' .. ARGV[4], '1', 'deployment_key', ARGV[5], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
