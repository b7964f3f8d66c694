-- Take an instance off its node and order the worker to stop it, in one step.
-- KEYS: 1 the node's desired hash, 2 assigned (instance -> node), 3 the node's assignments stream
-- ARGV: 1 instance id, 2 the stream's approximate max length, 3 the order's op
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'op', ARGV[3], 'instance_id', ARGV[1])
return 1
