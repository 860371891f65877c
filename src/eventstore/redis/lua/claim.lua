-- claim: leases up to `limit` ready nodes of some queues and appends NodeLeaseExpired?/NodeStarted
-- per node (the rule of decideStart in src/engine/decide.ts); lease times come from Redis TIME.
-- KEYS: the 14 global keys (see lib.lua); writes P:pos, P:log, P:ev, P:ver, P:rows and the queue zsets
--   (P:q:, P:l: and P:d: of the queues asked for: due delayed rows are promoted first).
-- ARGV[1] prefix P, ARGV[2] clock override ('' = Redis TIME), ARGV[3] instance id (unused)
-- ARGV[4..] nQueues, queue names..., limit, leaseMs, worker, lease token seed (see `claim` in lib-claim.lua)
-- Returns { now, leaseExpiresAt, first position, then per claimed node its string and the items of
-- its run's log it brings } (see `claim` in lib-claim.lua).
return claim(4, clock())
