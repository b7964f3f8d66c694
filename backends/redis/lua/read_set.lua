-- Every member of a set with the record stored at `<prefix><member>`, in one round trip.
-- KEYS: 1 the set   ARGV: 1 the record key prefix
-- Returns {member, JSON or nil, member, JSON or nil, ...}
local out = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('GET', ARGV[1] .. member)
end
return out
