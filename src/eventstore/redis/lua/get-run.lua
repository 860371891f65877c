-- getRun: one run record.
-- KEYS: the 14 global keys (see lib.lua); reads the run's fields.
-- ARGV[1] prefix P, ARGV[2], ARGV[3] unused, ARGV[4] runId
-- Returns { status, createdAt, updatedAt, finishedVersion|nil, quarantineReason|nil, version } or {} when missing.
return record(ARGV[4]) or {}
