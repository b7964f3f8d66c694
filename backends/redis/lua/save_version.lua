-- Write one version record and list it in the key's version set, atomically.
-- KEYS: 1 the version record, 2 the key's versions set   ARGV: 1 version JSON, 2 the version string
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
