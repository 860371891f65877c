-- Lovage Redis store: the functions every script shares. This file is prepended to each script
-- (src/eventstore/redis/scripts.ts); the script's own header lists its KEYS and ARGV.
--
-- Every script takes KEYS[1] P:pos, KEYS[2] P:log, KEYS[3] P:runs and ARGV[1] the prefix P, ARGV[2] the
-- clock override ('' = Redis TIME; tests inject their clock here), ARGV[3] the caller's instance id.
--
-- Key layout, every key under the prefix P (ARGV[1], e.g. "lovage:"):
--   P:pos            string  the last global position handed out (INCRBY)
--   P:log            zset    score = position, member = runId \0 version          (readAll)
--   P:runs           zset    score = 0, member = createdAt (16 digits) \0 runId     (listRuns: lex order is newest-first order)
--   P:run:<runId>    hash    s status, c createdAt, u updatedAt, f finishedVersion, qr quarantine reason, t "|task|names|"
--   P:ev:<runId>     list    "<position>:<event JSON>"; index = version - 1, so LLEN is the run's version
--   P:rdy:<runId>    hash    nodeId -> ready row: seq \0 queue \0 priority \0 attempts \0 worker \0 token \0 expires \0 task \0 args
--   P:q:<queue>      zset    unleased ready nodes: score = -priority, member = seq (16 digits) \0 runId \0 nodeId
--                            (equal scores sort by member, so by seq: priority DESC, then age)
--   P:l:<queue>      zset    leased nodes: score = leaseExpiresAt, same member
--   channel P:ready  published by scripts that make nodes claimable; the message is the writer's instance id
-- Run and queue keys are built here from the prefix, not passed in KEYS: on Redis Cluster put a hash
-- tag in the prefix ("{lovage}:") so that every key is in one slot.

local call = redis.call
local P = ARGV[1]
local NUL = '\0'

-- The store's clock, epoch ms: Redis TIME, or ARGV[2] when a test injects its clock.
local function clock()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n) return string.format('%.0f', n) end
local function pad(n) return string.format('%016.0f', n) end

local function member(seq, runId, nodeId) return pad(seq) .. NUL .. runId .. NUL .. nodeId end

local function split_member(m)
  local j = string.find(m, NUL, 18, true)
  return tonumber(string.sub(m, 1, 16)), string.sub(m, 18, j - 1), string.sub(m, j + 1)
end

-- A ready row as a table: 1 seq, 2 queue, 3 priority, 4 attempts, 5 worker, 6 token, 7 expires, 8 task, 9 args.
local function unpack_row(s)
  local r, i = {}, 1
  for k = 1, 8 do
    local j = string.find(s, NUL, i, true)
    r[k] = string.sub(s, i, j - 1)
    i = j + 1
  end
  r[9] = string.sub(s, i)
  return r
end

local function pack_row(r) return table.concat(r, NUL, 1, 9) end

-- Calls `cmd key a1 a2 ...` over `list` in chunks (Lua's unpack has a stack limit).
local function chunked(cmd, key, list)
  local n = #list
  for i = 1, n, 1000 do
    call(cmd, key, unpack(list, i, math.min(n, i + 999)))
  end
end

-- Removes every ready row of a run from its queues and drops the run's ready hash.
local function drop_ready(runId)
  local rk = P .. 'rdy:' .. runId
  local all = call('HGETALL', rk)
  for i = 1, #all, 2 do
    local r = unpack_row(all[i + 1])
    local m = member(tonumber(r[1]), runId, all[i])
    call('ZREM', P .. 'q:' .. r[2], m)
    call('ZREM', P .. 'l:' .. r[2], m)
  end
  call('DEL', rk)
end

-- The projection of one event on the ready queue (op R ready, D done, C lease cleared, S started).
-- Returns true when a node became claimable.
local function project(op, runId, nodeId, seq, a, b, c, d, e)
  local rk = P .. 'rdy:' .. runId
  if op == 'R' then
    -- a queue, b priority, c task, d args
    call('HSET', rk, nodeId, pack_row({ int(seq), a, b, '0', '', '', '', c, d }))
    call('ZADD', P .. 'q:' .. a, -tonumber(b), member(seq, runId, nodeId))
    return true
  end
  local s = call('HGET', rk, nodeId)
  if not s then return false end
  local r = unpack_row(s)
  local m = member(tonumber(r[1]), runId, nodeId)
  if op == 'D' then
    call('HDEL', rk, nodeId)
    call('ZREM', P .. (r[6] == '' and 'q:' or 'l:') .. r[2], m)
    return false
  elseif op == 'C' then
    if r[6] == '' then return false end
    r[5], r[6], r[7] = '', '', ''
    call('HSET', rk, nodeId, pack_row(r))
    call('ZREM', P .. 'l:' .. r[2], m)
    call('ZADD', P .. 'q:' .. r[2], -tonumber(r[3]), m)
    return true
  elseif op == 'S' then
    -- a attempt, b worker, c token, d leaseExpiresAt
    if r[6] == '' then call('ZREM', P .. 'q:' .. r[2], m) end
    r[4], r[5], r[6], r[7] = a, b, c, d
    call('HSET', rk, nodeId, pack_row(r))
    call('ZADD', P .. 'l:' .. r[2], tonumber(d), m)
  end
  return false
end

-- Appends a batch of requests read from ARGV starting at index `i`; validates every request before
-- writing anything, so the batch lands whole or not at all.
--
-- At ARGV[i]: the number of requests, then per request:
--   runId, expectedVersion, nEvents, nOps, createdAt ('' unless expectedVersion is 0), tasks ("|a|b|"),
--   status ('' when no event changes it), finishedVersion (''), updatedAt,
--   nEvents event JSON strings, then nOps ops of 7 values each:
--   kind (R|D|C|S), event index (1-based, in this request), nodeId, then
--   R: queue, priority, task, args JSON | S: attempt, worker, token, leaseExpiresAt | D, C: '', '', '', ''
--
-- Returns ok = { 1, first position, next ARGV index, woke }, or refused = { 0, reason, runId, expected, current|nodeId }.
local function append(i)
  local count = tonumber(ARGV[i])
  i = i + 1
  local reqs, versions, readied = {}, {}, {}
  local total = 0
  for n = 1, count do
    local q = { i = i, runId = ARGV[i], expected = tonumber(ARGV[i + 1]), events = tonumber(ARGV[i + 2]), ops = tonumber(ARGV[i + 3]) }
    local current = versions[q.runId] or call('LLEN', P .. 'ev:' .. q.runId)
    if current ~= q.expected then return { 0, 'version', q.runId, q.expected, current } end
    versions[q.runId] = current + q.events
    q.ev = i + 9
    q.op = q.ev + q.events
    for o = 0, q.ops - 1 do
      local k = q.op + o * 7
      if ARGV[k] == 'R' then
        local nodeId = ARGV[k + 2]
        local key = q.runId .. NUL .. nodeId
        if readied[key] or call('HEXISTS', P .. 'rdy:' .. q.runId, nodeId) == 1 then
          return { 0, 'ready', q.runId, q.expected, nodeId }
        end
        readied[key] = true
      end
    end
    total = total + q.events
    reqs[n] = q
    i = q.op + q.ops * 7
  end
  if total == 0 then return { 1, 0, i, false } end

  local first = call('INCRBY', KEYS[1], total) - total + 1
  local pos = first - 1
  local log, woke = {}, false
  for _, q in ipairs(reqs) do
    local runId, base = q.runId, pos
    if q.events > 0 then
      local items = {}
      for e = 1, q.events do
        pos = pos + 1
        items[e] = int(pos) .. ':' .. ARGV[q.ev + e - 1]
        log[#log + 1] = pos
        log[#log + 1] = runId .. NUL .. int(q.expected + e)
      end
      chunked('RPUSH', P .. 'ev:' .. runId, items)
      local rk, j = P .. 'run:' .. runId, q.i
      local status, finished, updated = ARGV[j + 6], ARGV[j + 7], ARGV[j + 8]
      if q.expected == 0 then
        local created = ARGV[j + 4]
        call('HSET', rk, 's', status == '' and 'running' or status, 'c', created, 'u', updated, 't', ARGV[j + 5])
        if finished ~= '' then call('HSET', rk, 'f', finished) end
        call('ZADD', KEYS[3], 0, pad(math.max(0, tonumber(created))) .. NUL .. runId)
      else
        if status ~= '' and call('HGET', rk, 's') ~= 'quarantined' then call('HSET', rk, 's', status) end
        if finished ~= '' then call('HSET', rk, 'f', finished) end
        call('HSET', rk, 'u', updated)
      end
      for o = 0, q.ops - 1 do
        local k = q.op + o * 7
        local seq = base + tonumber(ARGV[k + 1])
        if project(ARGV[k], runId, ARGV[k + 2], seq, ARGV[k + 3], ARGV[k + 4], ARGV[k + 5], ARGV[k + 6]) then woke = true end
      end
    end
  end
  chunked('ZADD', KEYS[2], log)
  return { 1, first, i, woke }
end

local function json_str(s) return cjson.encode(s) end

-- Leases up to `limit` ready nodes; ARGV from index `i`:
--   nQueues, queue names..., limit, leaseMs, worker, then `limit` lease tokens (made by the client:
--   unguessable, which a script cannot be).
-- Expired leases first (oldest expiry first), then priority DESC, then age. Appends per node what
-- decideStart (src/engine/decide.ts) decides: NodeLeaseExpired when a lease ran out, then NodeStarted.
-- Returns { now, leaseExpiresAt, then per node: runId, nodeId, task, args, attempts before, expired
-- worker ('' if none), expired (0|1), lease token, first version, first position }.
local function claim(i, now)
  local nq = tonumber(ARGV[i])
  local queues = {}
  for k = 1, nq do queues[k] = ARGV[i + k] end
  local limit, leaseMs, worker = tonumber(ARGV[i + nq + 1]), tonumber(ARGV[i + nq + 2]), ARGV[i + nq + 3]
  local tokens = i + nq + 4
  local expires = now + leaseMs
  local out = { now, expires }

  local chosen = {}
  local function gather(prefix, args, expired)
    local found = {}
    for _, qn in ipairs(queues) do
      local r = call(unpack(args(P .. prefix .. qn)))
      for k = 1, #r, 2 do found[#found + 1] = { m = r[k], score = tonumber(r[k + 1]), q = qn, expired = expired } end
    end
    if nq > 1 then
      table.sort(found, function(x, y)
        if x.score ~= y.score then return x.score < y.score end
        return tonumber(string.sub(x.m, 1, 16)) < tonumber(string.sub(y.m, 1, 16))
      end)
    end
    for _, f in ipairs(found) do
      if #chosen >= limit then break end
      chosen[#chosen + 1] = f
    end
  end
  gather('l:', function(key) return { 'ZRANGEBYSCORE', key, '-inf', '(' .. int(now), 'WITHSCORES', 'LIMIT', 0, limit } end, true)
  if #chosen < limit then
    local need = limit - #chosen
    gather('q:', function(key) return { 'ZRANGE', key, 0, need - 1, 'WITHSCORES' } end, false)
  end
  if #chosen == 0 then return out end

  local rows, total = {}, 0
  for n, c in ipairs(chosen) do
    local seq, runId, nodeId = split_member(c.m)
    local s = call('HGET', P .. 'rdy:' .. runId, nodeId)
    if s then
      rows[#rows + 1] = { c = c, runId = runId, nodeId = nodeId, r = unpack_row(s) }
      total = total + (c.expired and 2 or 1)
    else
      -- A queue entry without its row (should not happen): drop it rather than stall the queue.
      call('ZREM', P .. (c.expired and 'l:' or 'q:') .. c.q, c.m)
    end
  end
  if total == 0 then return out end

  local pos = call('INCRBY', KEYS[1], total) - total
  local nowS, expS, workerJ = int(now), int(expires), json_str(worker)
  local log, touched = {}, {}
  for n, x in ipairs(rows) do
    local r, runId, nodeId = x.r, x.runId, x.nodeId
    local attempts = tonumber(r[4])
    local token = ARGV[tokens + n - 1]
    local nodeJ = json_str(nodeId)
    local started = '{"type":"NodeStarted","at":' .. nowS .. ',"nodeId":' .. nodeJ .. ',"attempt":' .. int(attempts + 1)
      .. ',"worker":' .. workerJ .. ',"leaseToken":' .. json_str(token) .. ',"leaseExpiresAt":' .. expS .. '}'
    local evKey = P .. 'ev:' .. runId
    local firstPos = pos + 1
    local version
    local expiredWorker = ''
    if x.c.expired then
      expiredWorker = r[5]
      local lapsed = '{"type":"NodeLeaseExpired","at":' .. nowS .. ',"nodeId":' .. nodeJ .. ',"attempt":' .. int(attempts)
        .. ',"worker":' .. json_str(expiredWorker) .. '}'
      version = call('RPUSH', evKey, int(pos + 1) .. ':' .. lapsed, int(pos + 2) .. ':' .. started) - 1
      log[#log + 1] = pos + 1
      log[#log + 1] = runId .. NUL .. int(version)
      log[#log + 1] = pos + 2
      log[#log + 1] = runId .. NUL .. int(version + 1)
      pos = pos + 2
    else
      version = call('RPUSH', evKey, int(pos + 1) .. ':' .. started)
      log[#log + 1] = pos + 1
      log[#log + 1] = runId .. NUL .. int(version)
      pos = pos + 1
      call('ZREM', P .. 'q:' .. x.c.q, x.c.m)
    end
    r[4], r[5], r[6], r[7] = int(attempts + 1), worker, token, expS
    call('HSET', P .. 'rdy:' .. runId, nodeId, pack_row(r))
    call('ZADD', P .. 'l:' .. x.c.q, expires, x.c.m)
    if not touched[runId] then
      touched[runId] = true
      call('HSET', P .. 'run:' .. runId, 'u', nowS)
    end
    local k = #out
    out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = runId, nodeId, r[8], r[9], attempts
    out[k + 6], out[k + 7], out[k + 8], out[k + 9], out[k + 10] = expiredWorker, x.c.expired and 1 or 0, token, version, firstPos
  end
  chunked('ZADD', KEYS[2], log)
  return out
end

local function wake(woke)
  if woke then call('PUBLISH', P .. 'ready', ARGV[3]) end
end
