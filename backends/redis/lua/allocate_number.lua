-- A deployment number never handed out before and above every id the key already owns, so a deployment
-- created now takes over `current` even from ids MirrorNeuron numbered with its own counter.
-- KEYS: 1 the global last_number counter, 2 the key's id set
local highest = tonumber(redis.call('GET', KEYS[1])) or 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local tail = string.match(id, '_(%d+)$')
  if tail and tonumber(tail) > highest then highest = tonumber(tail) end
end
-- Formatted, not returned as a Lua number: integers stay exact up to 2^53 and never turn into 1e+15.
local next_number = string.format('%.0f', highest + 1)
redis.call('SET', KEYS[1], next_number)
return next_number
