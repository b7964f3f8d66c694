-- Drop every registered node whose heartbeat expired, with its desired assignments. Checking and dropping in
-- one script means a worker that beats again finds either all its assignments or none of them.
-- KEYS: 1 the nodes set, 2 the assigned hash (instance -> node)   ARGV: 1 node key prefix
-- Returns {dropped nodes, instance ids that were assigned to them}.
local dropped, lost = {}, {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local prefix = ARGV[1] .. node
  if redis.call('EXISTS', prefix .. ':heartbeat') == 0 then
    for _, instance in ipairs(redis.call('HKEYS', prefix .. ':desired')) do
      lost[#lost + 1] = instance
      redis.call('HDEL', KEYS[2], instance)
    end
    redis.call('DEL', prefix .. ':desired')
    redis.call('SREM', KEYS[1], node)
    dropped[#dropped + 1] = node
  end
end
return {dropped, lost}
