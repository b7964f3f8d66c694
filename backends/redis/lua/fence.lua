-- Fencing, prepended to every store write: KEYS[1] is the controller lease and ARGV[1] the lease value the
-- writer holds ('' for an unfenced writer). A controller that lost its lease, but has not noticed yet, writes
-- nothing. Both are removed before the body runs, so the body sees its own KEYS and ARGV.
local fence_key, fence_token = table.remove(KEYS, 1), table.remove(ARGV, 1)
if fence_token ~= '' and redis.call('GET', fence_key) ~= fence_token then
  return redis.error_reply('FENCED the controller lease is no longer held by ' .. fence_token)
end
