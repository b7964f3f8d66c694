-- Remove an instance and its entries in the name and key indexes.
-- KEYS: 1 the instance hash   ARGV: 1 instance id, 2 namespace prefix
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name = string.match(fields[i], '^service:(.*)$')
  if name then redis.call('SREM', ARGV[2] .. 'registry:service:' .. name, ARGV[1]) end
  if fields[i] == 'deployment_key' then
    redis.call('SREM', ARGV[2] .. 'registry:key:' .. fields[i + 1], ARGV[1])
  end
end
return redis.call('DEL', KEYS[1])
