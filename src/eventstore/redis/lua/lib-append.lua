-- `append`, for the scripts that append (prepended after lib.lua).

-- How many ARGV values each op kind takes (kind, event index and nodeId included).
local OP_SIZE = { R = 9, S = 7, Y = 5, D = 3, C = 3 }

-- Appends a batch read from ARGV at index `i`; checks every request before writing anything, so the
-- batch lands whole or not at all. At ARGV[i]: the number of requests, then per request:
--   runId, expectedVersion, nEvents, nOps, createdAt ('' unless expectedVersion is 0), tasks ("|a|b|"),
--   status ('' when no event changes it), finishedVersion ('' unchanged, '0' none: it runs again; of a
--   commuting append, the 1-based index of the event that ends the run), updatedAt,
--   names: '' for a plain append, else "id NUL after NUL nLeases" (id: kept in P:la, '' clears it;
--   after: '' for an append at expectedVersion, else a commuting append, see AppendRequest.after in
--   store.ts: it lands at the run's current version if P:la holds `after` and every lease holds),
--   nLeases pairs of nodeId and lease token, nEvents event JSON strings,
--   then nOps ops: kind, event index (0-based), nodeId, and for
--   R (NodeReady): queue, priority, task, args JSON, availableAt (0 = now), options JSON ('' = none) |
--   S (NodeStarted): attempt, worker, token, expires |
--   Y (NodeRetryScheduled/NodeDeferred): availableAt, attempts ('' = unchanged) |
--   D (NodeSucceeded/Failed, each node of WorkflowCancelled), C (NodeLeaseExpired/Released): nothing more
-- Returns { 1, first position, next ARGV index, woke, { the version each request landed after } } or
-- { 0, reason ('version'|'ready'|'after'|'lease'), runId, expected, current version|nodeId|last id }.
local function append(i)
  local count = tonumber(ARGV[i])
  i = i + 1
  local reqs, runIds, opKeys = {}, {}, {}
  local commuting, named_any = false, false
  for n = 1, count do
    local q = { at = i, runId = ARGV[i], expected = tonumber(ARGV[i + 1]), events = tonumber(ARGV[i + 2]), ops = tonumber(ARGV[i + 3]) }
    -- id and after stay nil (not '') for a plain append: a table with fewer fields is cheaper to fill.
    local c, leases = ARGV[i + 9], 0
    if c ~= '' then
      local a = string.find(c, NUL, 1, true)
      local b = string.find(c, NUL, a + 1, true)
      if a > 1 then q.id = string.sub(c, 1, a - 1) end
      if b > a + 1 then q.after = string.sub(c, a + 1, b - 1) end
      leases = tonumber(string.sub(c, b + 1))
    end
    q.ev = i + 10 + 2 * leases
    q.op = q.ev + q.events
    reqs[n] = q
    runIds[n] = q.runId
    if q.id then named_any = true end
    if q.after then
      commuting = true
      for l = i + 10, q.ev - 1, 2 do opKeys[#opKeys + 1] = q.runId .. NUL .. ARGV[l] end
    end
    -- Where each op starts (ops differ in size, see OP_SIZE).
    local at = q.op
    q.at_ops = {}
    for o = 1, q.ops do
      q.at_ops[o] = at
      opKeys[#opKeys + 1] = q.runId .. NUL .. ARGV[at + 2]
      at = at + OP_SIZE[ARGV[at]]
    end
    i = at
  end
  local stored = count > 0 and hmget(K_VER, runIds) or {}
  local named = commuting and hmget(K_LA, runIds) or {}
  -- Whether a run may have a last append id to clear (most stores have no chains: P:la is empty), or
  -- this batch names one that a later request of it must clear.
  local any_la = commuting or named_any or call('EXISTS', K_LA) == 1
  load_rows(opKeys)
  local versions, readied, total, last, bases = {}, {}, 0, {}, {}
  for n, q in ipairs(reqs) do
    local current = versions[q.runId] or tonumber(stored[n] or '0')
    if q.after then
      local la = last[q.runId]
      if la == nil then la = named[n] or '' end
      if la ~= q.after then return { 0, 'after', q.runId, q.expected, la } end
      for l = q.at + 10, q.ev - 1, 2 do
        local r = rows[q.runId .. NUL .. ARGV[l]]
        if not r or r[6] ~= ARGV[l + 1] then return { 0, 'lease', q.runId, q.expected, ARGV[l] } end
      end
      if current < q.expected then return { 0, 'version', q.runId, q.expected, current } end
      q.expected = current
    elseif current ~= q.expected then
      return { 0, 'version', q.runId, q.expected, current }
    end
    bases[n] = current
    -- A run's end clears its name too: nothing commutes after it, and P:la keeps no entry per ended run.
    local fin = ARGV[q.at + 7]
    if q.events > 0 and any_la then last[q.runId] = (fin == '' or fin == '0') and q.id or '' end
    versions[q.runId] = current + q.events
    -- The ops apply in order, as the SQL stores apply events: a NodeReady (R) for a node whose row an
    -- earlier op of the batch dropped (D: a resumed run's log, imported) is taken. readied[key]: whether
    -- the row is there after the ops so far (nil: as loaded).
    for _, k in ipairs(q.at_ops) do
      local op = ARGV[k]
      if op == 'R' then
        local key = q.runId .. NUL .. ARGV[k + 2]
        local there = readied[key]
        if there == nil then there = rows[key] and true or false end
        if there then return { 0, 'ready', q.runId, q.expected, ARGV[k + 2] } end
        readied[key] = true
      elseif op == 'D' then
        readied[q.runId .. NUL .. ARGV[k + 2]] = false
      end
    end
    total = total + q.events
  end
  if total == 0 then return { 1, 0, i, false, bases } end

  local first = call('INCRBY', K_POS, total) - total + 1
  local pos = first - 1
  local ev, log, ver, st, cr, up, tk, idx = {}, {}, {}, {}, {}, {}, {}, {}
  local finals, finalOrder = {}, {} -- runId -> finished version, or false: none (the last request decides)
  local woke = false
  for _, q in ipairs(reqs) do
    local runId, base = q.runId, pos
    for e = 1, q.events do
      pos = pos + 1
      local field = runId .. NUL .. num(q.expected + e)
      ev[#ev + 1], ev[#ev + 2] = field, int(pos) .. ':' .. ARGV[q.ev + e - 1]
      log[#log + 1] = field
    end
    if q.events > 0 then
      local j = q.at
      local status, finished, updated = ARGV[j + 6], ARGV[j + 7], ARGV[j + 8]
      ver[#ver + 1], ver[#ver + 2] = runId, num(q.expected + q.events)
      up[#up + 1], up[#up + 2] = runId, updated
      if q.expected == 0 then
        local created = ARGV[j + 4]
        cr[#cr + 1], cr[#cr + 2] = runId, created
        tk[#tk + 1], tk[#tk + 2] = runId, ARGV[j + 5]
        idx[#idx + 1], idx[#idx + 2] = '0', pad(math.max(0, tonumber(created))) .. NUL .. runId
        if status == '' then status = 'running' end
      end
      if status ~= '' then st[#st + 1], st[#st + 2] = runId, status end
      if finished ~= '' then
        if finals[runId] == nil then finalOrder[#finalOrder + 1] = runId end
        if q.after and finished ~= '0' then finished = num(q.expected + tonumber(finished)) end
        finals[runId] = finished ~= '0' and finished
      end
      for _, k in ipairs(q.at_ops) do
        local op, key = ARGV[k], runId .. NUL .. ARGV[k + 2]
        local r = rows[key]
        if op == 'R' then
          local available = tonumber(ARGV[k + 7])
          rows[key] = { pad(base + tonumber(ARGV[k + 1]) + 1), ARGV[k + 3], tonumber(ARGV[k + 4]), 0, '', '', 0, ARGV[k + 5], ARGV[k + 6], ARGV[k + 8], available }
          touch(key)
          -- A delayed node wakes nobody now: a claim finds it once it is due.
          if available == 0 then woke = true end
        elseif r and op == 'D' then
          rows[key] = false
          touch(key)
        elseif r and op == 'C' and r[6] ~= '' then
          r[5], r[6], r[7] = '', '', 0
          touch(key)
          woke = true
        elseif r and op == 'S' then
          r[4], r[5], r[6], r[7], r[11] = tonumber(ARGV[k + 3]), ARGV[k + 4], ARGV[k + 5], tonumber(ARGV[k + 6]), 0
          touch(key)
        elseif r and op == 'Y' then
          r[5], r[6], r[7], r[11] = '', '', 0, tonumber(ARGV[k + 3])
          if ARGV[k + 4] ~= '' then r[4] = tonumber(ARGV[k + 4]) end
          touch(key)
        end
      end
    end
  end
  many('HSET', K_EV, ev)
  many('RPUSH', K_LOG, log)
  many('HSET', K_VER, ver)
  many('HSET', K_UP, up)
  many('HSET', K_CR, cr)
  many('HSET', K_TK, tk)
  many('ZADD', K_RUNS, idx)
  many('HSET', K_ST, st)
  local fin, unfin = {}, {}
  for _, runId in ipairs(finalOrder) do
    local f = finals[runId]
    if f then fin[#fin + 1], fin[#fin + 2] = runId, f else unfin[#unfin + 1] = runId end
  end
  many('HDEL', K_FIN, unfin)
  many('HSET', K_FIN, fin)
  local la_set, la_del = {}, {}
  for runId, id in pairs(last) do
    if id ~= '' then la_set[#la_set + 1], la_set[#la_set + 2] = runId, id else la_del[#la_del + 1] = runId end
  end
  many('HSET', K_LA, la_set)
  many('HDEL', K_LA, la_del)
  flush_rows()
  return { 1, first, i, woke, bases }
end
