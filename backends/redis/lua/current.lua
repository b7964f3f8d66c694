-- Resolve a key's current pointer, healing it as reference §13 does, in one atomic step.
-- A pointer to a missing record purges that id; a pointer to a record that now has another key lets go.
-- KEYS: 1 the key's current pointer, 2 the key's id set, 3 `deployments` set
-- ARGV: 1 namespace prefix, 2 the key
-- Returns {id, record JSON} (the JSON may be corrupt: the caller reports it) or nil.
local id = redis.call('GET', KEYS[1])
if not id then return nil end
local raw = redis.call('GET', ARGV[1] .. 'deployment:' .. id)
if not raw then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], id)
  redis.call('SREM', KEYS[3], id)
  redis.call('DEL', ARGV[1] .. 'deployment:' .. id .. ':events')
  return nil
end
local ok, record = pcall(cjson.decode, raw)
if ok and type(record) == 'table' and record.deployment_key ~= ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], id)
  return nil
end
return {id, raw}
