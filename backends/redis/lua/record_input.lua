-- Append one input of a deployment's decisions to its stream, keeping the newest ~cap entries.
-- KEYS: 1 the deployment's inputs stream
-- ARGV: 1 the cap, 2 the time in ms, 3 the entry as JSON
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't_ms', ARGV[2], 'entry', ARGV[3])
return 1
