-- set-rate-limit: EventStore.setRateLimit: stores or clears the run-time override of a key's rate limit
-- (read by take-token.lua in its atomic step).
-- KEYS: the 14 global keys (see lib.lua; none used). Writes P:rate (hash key -> "<count>:<periodMs>").
-- ARGV[1] prefix P, ARGV[2] clock override (unused), ARGV[3] instance id (unused)
-- ARGV[4] key, ARGV[5] count ('' = clear the override), ARGV[6] periodMs
-- Returns 1.
if ARGV[5] == '' then
  call('HDEL', P .. 'rate', ARGV[4])
else
  call('HSET', P .. 'rate', ARGV[4], ARGV[5] .. ':' .. ARGV[6])
end
return 1
