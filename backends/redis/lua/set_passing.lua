-- Set an instance's passing flag, but never bring back an instance whose TTL ran out as a bare hash.
-- KEYS: 1 the instance hash   ARGV: 1 '1' or '0'
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], 'passing', ARGV[1])
