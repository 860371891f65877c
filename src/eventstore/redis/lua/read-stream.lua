-- readStream: one run's events from a version, in version order.
-- KEYS: the 14 global keys (see lib.lua); reads P:ver and P:ev.
-- ARGV[1] prefix P, ARGV[2], ARGV[3] unused, ARGV[4] runId, ARGV[5] from version (1-based)
-- Returns the "<position>:<event JSON>" items of versions from..current.
local runId = ARGV[4]
local v = tonumber(call('HGET', K_VER, runId) or '0')
local fields = {}
for k = tonumber(ARGV[5]), v do fields[#fields + 1] = runId .. NUL .. int(k) end
return hmget(K_EV, fields)
