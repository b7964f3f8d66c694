-- Register one service of an instance: the instance hash (deployment fields, passing, its service names)
-- gets a fresh TTL, and the name and key indexes list it. An instance that moved to another key leaves the
-- old key's index.
-- KEYS: 1 the instance hash, 2 the service-name index, 3 the key index
-- ARGV: 1 instance id, 2 ttl ms, 3 namespace prefix, 4 service name, 5.. field, value pairs
local old_key = redis.call('HGET', KEYS[1], 'deployment_key')
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local new_key
for i = 1, #fields, 2 do
  if fields[i] == 'deployment_key' then new_key = fields[i + 1] end
end
if old_key and old_key ~= new_key then
  redis.call('SREM', ARGV[3] .. 'registry:key:' .. old_key, ARGV[1])
end
redis.call('HSET', KEYS[1], 'service:' .. ARGV[4], '1', unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
