-- Every live instance that registered a service name, with its fields. Entries of instances that expired
-- (or came back without that service) leave the index.
-- KEYS: 1 the service-name index   ARGV: 1 namespace prefix, 2 service name
-- Returns {instance id, {field, value, ...}, ...}
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local instance = ARGV[1] .. 'registry:instance:' .. id
  if redis.call('HEXISTS', instance, 'service:' .. ARGV[2]) == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGETALL', instance)
  end
end
return out
