-- Forget an id or version whose record is gone, unless it came back meanwhile: the check and the removal are
-- one step, so a concurrent writer never loses a fresh entry. Shared by list self-healing and the sweep.
-- KEYS: 1 the record, 2.. sets lose the member, string pointers naming it are deleted, streams (its event
--       history, its inputs) and hashes (its instances' lives) are deleted
-- ARGV: 1 the member
-- Returns 1 when forgotten, 0 when the record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind == 'set' then
    redis.call('SREM', KEYS[i], ARGV[1])
  elseif kind == 'stream' or kind == 'hash' or (kind == 'string' and redis.call('GET', KEYS[i]) == ARGV[1]) then
    redis.call('DEL', KEYS[i])
  end
end
return 1
