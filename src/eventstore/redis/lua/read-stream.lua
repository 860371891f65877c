-- readStream: one run's events from a version, in version order, a page at a time (a run of 100k events
-- read in one call would hold Redis for a tenth of a second; the client asks for the next page while it
-- parses this one).
-- KEYS: the 14 global keys (see lib.lua); reads P:ver and P:ev.
-- ARGV[1] prefix P, ARGV[2], ARGV[3] unused, ARGV[4] runId, ARGV[5] from version (1-based), ARGV[6] page size
-- Returns { the run's version, its creation time ('' if none: the client tells a run deleted or
-- submitted again between two pages by these two), then the "<position>:<event JSON>" items of versions
-- from.. (at most a page; nil where one is missing) }.
local runId = ARGV[4]
local v = tonumber(call('HGET', K_VER, runId) or '0')
local created = call('HGET', K_CR, runId) or ''
local from = tonumber(ARGV[5])
local fields = {}
for k = from, math.min(v, from + tonumber(ARGV[6]) - 1) do fields[#fields + 1] = runId .. NUL .. int(k) end
local items = hmget(K_EV, fields)
local out = { v, created }
for k = 1, #items do out[k + 2] = items[k] end
return out
