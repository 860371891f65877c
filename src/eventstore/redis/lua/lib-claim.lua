-- `claim`, for the scripts that claim (prepended after lib.lua).

-- Leases up to `limit` ready nodes; ARGV from index `i`: nQueues, queue names..., limit, leaseMs,
-- worker, token seed: lease token n of this claim is seed .. n (the client makes the seed: unguessable,
-- which a script cannot be; one seed a claim, not a token a node, keeps the call small).
-- Delayed rows (P:d:<queue>) whose availableAt has come are first moved to P:q:<queue>, at most
-- PROMOTE_MAX (or `limit`, if more) a queue per claim, earliest first: a backlog of due rows larger than
-- that is promoted over the next claims. A row not yet due is never claimed.
-- Then expired leases first (oldest expiry first), then priority DESC, then age. Appends per node what
-- decideStart (src/engine/decide.ts) decides: NodeLeaseExpired when a lease ran out, then NodeStarted.
-- Returns { now, leaseExpiresAt, position of the first event appended, then one string per node, in
-- the order of their events and lease tokens (seed .. 1, seed .. 2, ...): runId, nodeId, task, args JSON,
-- attempts before, expired (0|1), expired worker ('' if none), first version, options JSON ('' = none),
-- joined by NUL (none of them holds one), then a last field h. One string a node: a reply of many small
-- values costs the client far more to parse. The first node of a run of at most HISTORY_MAX events
-- (before this claim) brings that run's log too, so a worker that has not cached the run needs no
-- readStream: h is then its number of events, and the h reply items after the node's string are its
-- "<position>:<event JSON>" items (versions 1..h), as stored (not copied into one string: they are
-- most of the reply's bytes); otherwise h is 0 and the next node's string follows.
local PROMOTE_MAX = 1000
local HISTORY_MAX = 64

-- Moves the due delayed rows of these queues into their claimable zsets (same member: the row keeps
-- its priority and age order). Costs one ZRANGEBYSCORE a queue when nothing is due.
local function promote_due(queues, now, limit)
  local due, dkeys, members = {}, {}, {}
  local nowS, count = int(now), math.max(PROMOTE_MAX, limit)
  for _, qn in ipairs(queues) do
    local dk = zsets(qn).d
    for _, m in ipairs(call('ZRANGEBYSCORE', dk, '-inf', nowS, 'LIMIT', 0, count)) do
      local n = #due + 1
      due[n], dkeys[n], members[n] = string.sub(m, 18), dk, m
    end
  end
  if #due == 0 then return end
  load_rows(due)
  for n, k in ipairs(due) do
    if rows[k] and pkey[k] == dkeys[n] then
      rows[k][11] = 0
      touch(k)
    else
      call('ZREM', dkeys[n], members[n]) -- an index entry without its (delayed) row: drop it
    end
  end
  flush_rows()
end

local function claim(i, now)
  local nq = tonumber(ARGV[i])
  local queues = {}
  for k = 1, nq do queues[k] = ARGV[i + k] end
  local limit, leaseMs, worker = tonumber(ARGV[i + nq + 1]), tonumber(ARGV[i + nq + 2]), ARGV[i + nq + 3]
  local seed = ARGV[i + nq + 4]
  local expires = now + leaseMs
  local out = { now, expires, 0 }
  promote_due(queues, now, limit)

  local chosen = {}
  local function gather(found)
    if nq > 1 then
      table.sort(found, function(x, y)
        if x[2] ~= y[2] then return x[2] < y[2] end
        return tonumber(string.sub(x[1], 1, 16)) < tonumber(string.sub(y[1], 1, 16))
      end)
    end
    for _, f in ipairs(found) do
      if #chosen >= limit then break end
      chosen[#chosen + 1] = f
    end
  end
  local found = {}
  for _, qn in ipairs(queues) do
    local r = call('ZRANGEBYSCORE', zsets(qn).l, '-inf', '(' .. int(now), 'WITHSCORES', 'LIMIT', 0, limit)
    for k = 1, #r, 2 do found[#found + 1] = { r[k], tonumber(r[k + 1]), qn, true } end
  end
  gather(found)
  if #chosen < limit then
    found = {}
    for _, qn in ipairs(queues) do
      -- One queue: its order is the claim's (no scores needed). Several: merged by score, then age.
      if nq == 1 then
        for _, m in ipairs(call('ZRANGE', zsets(qn).q, 0, limit - #chosen - 1)) do found[#found + 1] = { m, 0, qn, false } end
      else
        local r = call('ZRANGE', zsets(qn).q, 0, limit - #chosen - 1, 'WITHSCORES')
        for k = 1, #r, 2 do found[#found + 1] = { r[k], tonumber(r[k + 1]), qn, false } end
      end
    end
    gather(found)
  end
  if #chosen == 0 then return out end

  local keys, runIds = {}, {}
  for n, c in ipairs(chosen) do
    local k = string.sub(c[1], 18)
    keys[n] = k
    runIds[n] = string.sub(k, 1, string.find(k, NUL, 1, true) - 1)
  end
  load_rows(keys)
  local stored = hmget(K_VER, runIds)
  local versions, total = {}, 0
  for n, c in ipairs(chosen) do
    if rows[keys[n]] then
      total = total + (c[4] and 2 or 1)
      versions[runIds[n]] = tonumber(stored[n] or '0')
    else
      call('ZREM', c[4] and zsets(c[3]).l or zsets(c[3]).q, c[1]) -- an index entry without its row: drop it
    end
  end
  if total == 0 then return out end

  local pos = call('INCRBY', K_POS, total) - total
  out[3] = pos + 1
  local nowS, expS, workerJ = int(now), int(expires), jstr(worker)
  -- The constant parts of this claim's NodeStarted events.
  local startedAt = ':{"type":"NodeStarted","at":' .. nowS .. ',"nodeId":'
  local startedBy = ',"worker":' .. workerJ .. ',"leaseToken":"'
  local startedUntil = '","leaseExpiresAt":' .. expS .. '}'
  local ev, log = {}, {}
  local n = 0
  -- Small runs' logs: seen[runId] once a run had its first node; histOf[n] = the run's version before
  -- this claim, for the n-th node when it carries the log; histFields, the fields of those logs.
  local seen, histOf, histFields = {}, {}, {}
  for c_n, c in ipairs(chosen) do
    local key, runId = keys[c_n], runIds[c_n]
    local r = rows[key]
    if r then
      n = n + 1
      local nodeId = string.sub(key, #runId + 2)
      local attempts = r[4]
      local token = seed .. num(n)
      local nodeJ = jstr(nodeId)
      local version = versions[runId]
      if not seen[runId] then
        seen[runId] = true
        if version > 0 and version <= HISTORY_MAX then
          histOf[n] = version
          for v = 1, version do histFields[#histFields + 1] = runId .. NUL .. num(v) end
        end
      end
      local expiredWorker = ''
      local firstS
      if c[4] then
        expiredWorker = r[5]
        version = version + 1
        pos = pos + 1
        firstS = num(version)
        local field = runId .. NUL .. firstS
        ev[#ev + 1] = field
        ev[#ev + 1] = int(pos) .. ':{"type":"NodeLeaseExpired","at":' .. nowS .. ',"nodeId":' .. nodeJ .. ',"attempt":' .. num(attempts)
          .. ',"worker":' .. jstr(expiredWorker) .. '}'
        log[#log + 1] = field
      end
      version = version + 1
      pos = pos + 1
      local versionS = num(version)
      local field = runId .. NUL .. versionS
      ev[#ev + 1] = field
      ev[#ev + 1] = int(pos) .. startedAt .. nodeJ .. ',"attempt":' .. num(attempts + 1) .. startedBy .. token .. startedUntil
      log[#log + 1] = field
      versions[runId] = version
      r[4], r[5], r[6], r[7], r[11] = attempts + 1, worker, token, expires, 0
      touch(key)
      out[n + 3] = runId .. NUL .. nodeId .. NUL .. r[8] .. NUL .. r[9] .. NUL .. num(attempts) .. NUL .. (c[4] and '1' or '0')
        .. NUL .. expiredWorker .. NUL .. (firstS or versionS) .. NUL .. r[10]
    end
  end
  -- The small runs' logs, read in one HMGET (before this claim's events are written).
  local items, at = hmget(K_EV, histFields), 0
  local reply = { out[1], out[2], out[3] }
  for k = 1, n do
    local h = histOf[k]
    local whole = h ~= nil
    for j = at + 1, at + (h or 0) do whole = whole and items[j] ~= false end
    if whole then
      reply[#reply + 1] = out[k + 3] .. NUL .. num(h)
      for j = at + 1, at + h do reply[#reply + 1] = items[j] end
    else
      reply[#reply + 1] = out[k + 3] .. NUL .. '0'
    end
    at = at + (h or 0)
  end
  local ver = {}
  for runId, v in pairs(versions) do ver[#ver + 1], ver[#ver + 2] = runId, num(v) end
  many('HSET', K_EV, ev)
  many('RPUSH', K_LOG, log)
  many('HSET', K_VER, ver)
  flush_rows()
  return reply
end
