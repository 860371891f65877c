-- appendAndClaim: a worker's outcomes (an append batch) and its next claim in one atomic step, as
-- BullMQ's moveToFinished fetches the next job. A refused append claims nothing.
-- KEYS: the 14 global keys (see lib.lua)
-- ARGV[1] prefix P, ARGV[2] clock override ('' = Redis TIME), ARGV[3] writer instance id (the PUBLISH message)
-- ARGV[4..] the append batch (see `append` in lib-append.lua), then the claim (see `claim` in lib-claim.lua)
-- Returns { 1, first position, then the claim's reply... } or the append's refusal { 0, ... }.
local r = append(4)
if r[1] == 0 then return r end
wake(r[4])
local claimed = claim(r[3], clock())
local out = { 1, r[2] }
for k = 1, #claimed do out[k + 2] = claimed[k] end
return out
