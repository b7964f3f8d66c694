-- Assign a placement to a node: its desired state, the index, and the worker's order, in one step.
-- KEYS: 1 the node's desired hash, 2 assigned (instance -> node), 3 unassigned, 4 the node's assignments stream
-- ARGV: 1 instance id, 2 node, 3 placement JSON, 4 the stream's approximate max length, 5 the order's op
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'op', ARGV[5], 'placement', ARGV[3])
return 1
