-- Upsert the changed live instances and forget the removed ones in one step, so a controller taking over
-- sees all of a decision or none of it.
-- KEYS: 1 the live instances hash
-- ARGV: 1 how many instances changed, then that many id, JSON pairs, then the removed ids
local changed = tonumber(ARGV[1])
for i = 2, 2 * changed, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = 2 * changed + 2, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
