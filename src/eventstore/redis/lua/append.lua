-- append: records a batch of events for several runs, with their ready-queue and runs projection,
-- all or nothing (every request is checked before anything is written).
-- KEYS: the 13 global keys (see lib.lua); writes P:pos, P:log, P:runs, P:ev, P:ver, P:st, P:cr, P:up,
--   P:fin, P:tk, P:rows and the queue zsets (P:q:, P:l:, P:d:) of the rows it changes.
-- ARGV[1] prefix P, ARGV[2] clock override (unused), ARGV[3] writer instance id (the PUBLISH message)
-- ARGV[4..] the batch, as `append` in lib-append.lua reads it
-- Returns { 1, first position } or { 0, reason ('version'|'ready'), runId, expectedVersion, current version|nodeId }.
local r = append(4)
if r[1] == 0 then return r end
wake(r[4])
return { 1, r[2] }
