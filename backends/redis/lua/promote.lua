-- Every live instance of a key at a version becomes primary, in one call (reference §12). Index entries of
-- instances that expired or moved to another key are dropped on the way.
-- KEYS: 1 the key index   ARGV: 1 namespace prefix, 2 key, 3 version
local promoted = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local instance = ARGV[1] .. 'registry:instance:' .. id
  local found = redis.call('HMGET', instance, 'deployment_key', 'deployment_version')
  if found[1] ~= ARGV[2] then
    redis.call('SREM', KEYS[1], id)
  elseif found[2] == ARGV[3] then
    redis.call('HSET', instance, 'deployment_role', 'primary')
    promoted = promoted + 1
  end
end
return promoted
