-- The next version of a key: above both our counter and every integer version already stored, so versions
-- MirrorNeuron wrote (it keeps no counter) are never handed out again (R1). Atomic, so concurrent deploys
-- never share one.
-- KEYS: 1 the key's last_version counter, 2 the key's versions set
local highest = tonumber(redis.call('GET', KEYS[1])) or 0
for _, version in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.match(version, '^%d+$') then
    local n = tonumber(version)
    if n > highest then highest = n end
  end
end
highest = highest + 1
redis.call('SET', KEYS[1], highest)
return highest
