-- append: records a batch of events for several runs, with their ready-queue and runs projection,
-- all or nothing (every request is checked before anything is written).
-- KEYS: the 14 global keys (see lib.lua); writes P:pos, P:log, P:runs, P:ev, P:ver, P:st, P:cr, P:up,
--   P:fin, P:tk, P:la, P:rows and the queue zsets (P:q:, P:l:, P:d:) of the rows it changes.
-- ARGV[1] prefix P, ARGV[2] clock override (unused), ARGV[3] writer instance id (the PUBLISH message)
-- ARGV[4..] the batch, as `append` in lib-append.lua reads it
-- Returns { 1, first position, then the version each request landed after } or the refusal of `append`
-- in lib-append.lua ({ 0, reason, runId, expectedVersion, current version|nodeId|last append id }).
local r = append(4)
if r[1] == 0 then return r end
wake(r[4])
local out = { 1, r[2] }
for n, base in ipairs(r[5]) do out[n + 2] = base end
return out
