-- Take the controller lease if nobody holds it (SET NX PX), with the next fencing token, in one step: a token is
-- spent only by the term that uses it, and no two terms ever share one.
-- KEYS: 1 the lease, 2 the fencing counter   ARGV: 1 owner, 2 ttl ms
-- Returns {1, '<owner>:<token>'} when taken, {0, remaining ms (-1: held without a TTL)} when another holds it.
local remaining = redis.call('PTTL', KEYS[1])
if remaining ~= -2 then return {0, remaining} end
local value = ARGV[1] .. ':' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
