-- Write one deployment record with everything that depends on it, in one round trip (reference §13 upsert).
-- KEYS: 1 record, 2 `deployments` set, 3 the key's current pointer, 4 the key's id set,
--       5 the deployment's event stream, 6 the cluster status stream
-- ARGV: 1 id, 2 key, 3 expected revision, 4 record JSON (already at expected + 1), 5 sha256 of it,
--       6 node name, 7 namespace prefix, 8.. events as JSON
-- Returns {1, new revision} | {0, stored revision} (conflict) | {-1, 0} (stored record is corrupt)
local id, key, expected, raw = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

-- The allocation number at the end of `dep_<safekey>_<n>` as a digit string without leading zeros,
-- compared by length then text so numbers beyond 2^53 still order correctly.
local function number_of(deployment_id)
  local tail = string.match(deployment_id, '([^_]*)$')
  if not string.match(tail, '^%d+$') then return '0' end
  local digits = (string.gsub(tail, '^0+', ''))
  if digits == '' then return '0' end
  return digits
end

local function not_newer(a, b)
  local na, nb = number_of(a), number_of(b)
  if #na ~= #nb then return #na < #nb end
  return na <= nb
end

local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, old = pcall(cjson.decode, stored)
  if not ok or type(old) ~= 'table' or old.deployment_id ~= id then return {-1, 0} end
  local actual = tonumber(old.revision) or 0
  if actual ~= expected then
    -- A retry of a write whose reply was lost finds its own bytes already stored: report that success.
    if actual == expected + 1 and stored == raw then return {1, actual} end
    return {0, actual}
  end
  if type(old.deployment_key) == 'string' and old.deployment_key ~= key then
    local base = ARGV[7] .. 'deployment:key:' .. old.deployment_key
    if redis.call('GET', base .. ':current') == id then redis.call('DEL', base .. ':current') end
    redis.call('SREM', base .. ':deployments', id)
  end
elseif expected ~= 0 then
  return {0, 0}
end

redis.call('SET', KEYS[1], raw)
redis.call('SADD', KEYS[2], id)
redis.call('SADD', KEYS[4], id)
local current = redis.call('GET', KEYS[3])
if not current or not_newer(current, id) then redis.call('SET', KEYS[3], id) end
-- A deployment's history keeps its newest ~10,000 events (the record itself its newest 100): a service replaced
-- for weeks by standing reconciliation must not grow its stream without bound.
for i = 8, #ARGV do
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'event', ARGV[i])
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', '10000', '*', 'node', ARGV[6], 'domain', 'deployments',
  'entity_id', id, 'action', 'upsert', 'revision', ARGV[5])
return {1, expected + 1}
