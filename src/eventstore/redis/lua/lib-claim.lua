-- `claim`, for the scripts that claim (prepended after lib.lua).

-- Leases up to `limit` ready nodes; ARGV from index `i`: nQueues, queue names..., limit, leaseMs,
-- worker, token seed: lease token n of this claim is seed .. n (the client makes the seed: unguessable,
-- which a script cannot be; one seed a claim, not a token a node, keeps the call small).
-- Expired leases first (oldest expiry first), then priority DESC, then age. Appends per node what
-- decideStart (src/engine/decide.ts) decides: NodeLeaseExpired when a lease ran out, then NodeStarted.
-- Returns { now, leaseExpiresAt, then per node: runId, nodeId, task, args, attempts before, expired
-- worker ('' if none), expired (0|1), lease token, first version, first position }.
local function claim(i, now)
  local nq = tonumber(ARGV[i])
  local queues = {}
  for k = 1, nq do queues[k] = ARGV[i + k] end
  local limit, leaseMs, worker = tonumber(ARGV[i + nq + 1]), tonumber(ARGV[i + nq + 2]), ARGV[i + nq + 3]
  local seed = ARGV[i + nq + 4]
  local expires = now + leaseMs
  local out = { now, expires }

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
    local r = call('ZRANGEBYSCORE', P .. 'l:' .. qn, '-inf', '(' .. int(now), 'WITHSCORES', 'LIMIT', 0, limit)
    for k = 1, #r, 2 do found[#found + 1] = { r[k], tonumber(r[k + 1]), qn, true } end
  end
  gather(found)
  if #chosen < limit then
    found = {}
    for _, qn in ipairs(queues) do
      local r = call('ZRANGE', P .. 'q:' .. qn, 0, limit - #chosen - 1, 'WITHSCORES')
      for k = 1, #r, 2 do found[#found + 1] = { r[k], tonumber(r[k + 1]), qn, false } end
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
      call('ZREM', P .. (c[4] and 'l:' or 'q:') .. c[3], c[1]) -- an index entry without its row: drop it
    end
  end
  if total == 0 then return out end

  local pos = call('INCRBY', K_POS, total) - total
  local nowS, expS, workerJ = int(now), int(expires), jstr(worker)
  local ev, log = {}, {}
  local n = 0
  for c_n, c in ipairs(chosen) do
    local key, runId = keys[c_n], runIds[c_n]
    local r = rows[key]
    if r then
      n = n + 1
      local nodeId = string.sub(key, #runId + 2)
      local attempts = r[4]
      local token = seed .. n
      local nodeJ = jstr(nodeId)
      local version = versions[runId]
      local firstPos = pos + 1
      local expiredWorker = ''
      if c[4] then
        expiredWorker = r[5]
        version = version + 1
        pos = pos + 1
        local field = runId .. NUL .. int(version)
        ev[#ev + 1] = field
        ev[#ev + 1] = int(pos) .. ':{"type":"NodeLeaseExpired","at":' .. nowS .. ',"nodeId":' .. nodeJ .. ',"attempt":' .. int(attempts)
          .. ',"worker":' .. jstr(expiredWorker) .. '}'
        log[#log + 1] = field
      end
      version = version + 1
      pos = pos + 1
      local field = runId .. NUL .. int(version)
      ev[#ev + 1] = field
      ev[#ev + 1] = int(pos) .. ':{"type":"NodeStarted","at":' .. nowS .. ',"nodeId":' .. nodeJ .. ',"attempt":' .. int(attempts + 1)
        .. ',"worker":' .. workerJ .. ',"leaseToken":"' .. token .. '","leaseExpiresAt":' .. expS .. '}'
      log[#log + 1] = field
      versions[runId] = version
      r[4], r[5], r[6], r[7] = attempts + 1, worker, token, expires
      touch(key)
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = runId, nodeId, r[8], r[9], attempts
      out[k + 6], out[k + 7], out[k + 8], out[k + 9], out[k + 10] = expiredWorker, c[4] and 1 or 0, token, version - (c[4] and 1 or 0), firstPos
    end
  end
  local ver = {}
  for runId, v in pairs(versions) do ver[#ver + 1], ver[#ver + 2] = runId, v end
  many('HSET', K_EV, ev)
  many('RPUSH', K_LOG, log)
  many('HSET', K_VER, ver)
  flush_rows()
  return out
end
