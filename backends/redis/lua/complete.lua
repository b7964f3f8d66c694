-- A batch instance completed on its node (R3b): its `completed` fact goes on the facts stream and, in the same step,
-- the instance leaves the node's desired state (and `assigned`, while that still names this node). Done, it is
-- nothing a worker should run again: a worker restarted on the node does not take it up, and a node lost later
-- does not report it failed.
-- KEYS[1] facts stream, KEYS[2] the node's desired hash, KEYS[3] assigned
-- ARGV[1] stream MAXLEN (approximate), ARGV[2] instance id, ARGV[3] node, ARGV[4..] the fact's field/value pairs
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 4))
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[3] then
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return 1
