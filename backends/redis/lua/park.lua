-- A placement waiting for a live node (ARGV[2] its JSON), or one forgotten before it got one (ARGV[2] = '').
-- KEYS: 1 unassigned; ARGV: 1 instance id, 2 placement JSON or ''
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
