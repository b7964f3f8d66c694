-- A worker's heartbeat: keep its node live for the TTL the controller asked for, and (re)register the node.
-- KEYS: 1 the heartbeat, 2 the TTL setting, 3 the nodes set   ARGV: 1 node, 2 value, 3 TTL ms when none is set
-- Returns 1 when the heartbeat was still alive, 0 when it had expired (or this is the node's first one): then
-- the controller may have dropped the node and its assignments, and the worker must reconcile.
local ttl = tonumber(redis.call('GET', KEYS[2])) or tonumber(ARGV[3])
local previous = redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'GET')
redis.call('SADD', KEYS[3], ARGV[1])
if previous then return 1 end
return 0
