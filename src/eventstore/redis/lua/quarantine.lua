-- quarantine: marks a run whose log does not fold as quarantined, with the reason, and takes its
-- nodes out of the ready queue. A missing run is left alone.
-- KEYS: the 14 global keys (see lib.lua); writes P:qr, P:up, P:rows and the queue zsets (delayed rows
--   leave P:d:<queue> too).
-- ARGV[1] prefix P, ARGV[2] clock override ('' = Redis TIME), ARGV[3] instance id (unused)
-- ARGV[4] runId, ARGV[5] reason
-- Returns 1 when the run exists, else 0.
local runId = ARGV[4]
if call('HEXISTS', K_VER, runId) == 0 then return 0 end
call('HSET', K_QR, runId, ARGV[5])
call('HSET', K_UP, runId, int(clock()))
drop_rows({ runId })
return 1
