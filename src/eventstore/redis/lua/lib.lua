-- Lovage Redis store: the key layout and the functions every script shares. This file is prepended to
-- each script, with lib-append.lua and lib-claim.lua for the scripts that append or claim (see
-- src/eventstore/redis/scripts.ts); the script's own header lists what it reads of KEYS and ARGV.
--
-- Every script gets the same 14 KEYS, all under the prefix P, and ARGV[1] = P, ARGV[2] = the clock
-- override ('' = Redis TIME; tests inject their clock here), ARGV[3] = the caller's instance id.
--   KEYS[1]  P:pos   string  the last global position handed out (INCRBY)
--   KEYS[2]  P:log   list    the global order: element i (0-based) is the P:ev field of position base + i + 1 (readAll)
--   KEYS[3]  P:runs  zset    score 0, member createdAt (16 digits) \0 runId           (listRuns: lex order = newest first)
--   KEYS[4]  P:ev    hash    runId \0 version -> "<position>:<event JSON>"            (readStream, readAll)
--   KEYS[5]  P:ver   hash    runId -> version (a run exists iff it has a version)
--   KEYS[6]  P:st    hash    runId -> running | succeeded | failed | cancelled
--   KEYS[7]  P:cr    hash    runId -> createdAt
--   KEYS[8]  P:up    hash    runId -> updatedAt
--   KEYS[9]  P:fin   hash    runId -> finishedVersion
--   KEYS[10] P:qr    hash    runId -> quarantine reason (present: the run is quarantined)
--   KEYS[11] P:tk    hash    runId -> "|task|names|" of its DAG
--   KEYS[12] P:rows  hash    runId \0 nodeId -> ready row, MessagePack of: seq (16 digits), queue, priority,
--                            attempts, worker, token ('' = not leased), expires, task, args JSON,
--                            options JSON ('' = none), availableAt (0 = claimable now; rows written
--                            before delayed readiness have neither: read as '' and 0)
--   KEYS[13] P:base  string  base: how many dead entries deleteRuns has trimmed off the head of P:log
--   KEYS[14] P:la    hash    runId -> the id of its last append that was not a claim, when that append named
--                            one (AppendRequest.id): a commuting append lands only after it (lib-append.lua)
-- and per queue (built here from the prefix; the store needs one Redis, not a Cluster):
--   P:q:<queue>      zset    unleased rows claimable now: score -priority, member seq (16 digits) \0 runId \0 nodeId
--                            (equal scores sort by member, so by seq: priority DESC, then age)
--   P:l:<queue>      zset    leased rows: score leaseExpiresAt, same member
--   P:d:<queue>      zset    unleased rows not claimable before a time (countdown, eta, retry, deferral):
--                            score availableAt, same member; a claim first moves the due ones to P:q:<queue>
--                            (BullMQ's delayed set), where they compete by priority and age as if never delayed
--   channel P:ready  published by scripts that make nodes claimable; the message is the writer's instance id
-- The store is columnar (one hash per field, not one key per run) so that a batch of 100 outcomes or
-- claims writes each structure with one command: a Redis call from Lua costs ~2 us, the data ~nothing.
-- The queue zsets are an index of the rows: a row with a token is in P:l:<queue>; one without is in
-- P:d:<queue> while it has an availableAt, else in P:q:<queue>.
-- P:log is a list, not a zset (RPUSH of a batch costs ~0.1 us an entry, ZADD ~1.5): a deleted run's
-- entries stay in it, dead (their P:ev field is gone, or names an event of a later run that reused the
-- id: an event's item starts with its own position), until deleteRuns trims dead entries off the head.

local call = redis.call
-- The client sends ARGV as one MessagePack array of strings (see packArgs in scripts.ts).
local ARGV = cmsgpack.unpack(ARGV[1])
local P = ARGV[1]
local NUL = '\0'
local K_POS, K_LOG, K_RUNS, K_EV, K_VER, K_ST = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local K_CR, K_UP, K_FIN, K_QR, K_TK, K_ROWS, K_BASE, K_LA = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]

-- The store's clock, epoch ms: Redis TIME, or ARGV[2] when a test injects its clock.
local function clock()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A number as digits. '%d' (a C long here) for the integers the store keeps (positions, versions, ms):
-- '%.0f' goes through glibc's floating-point printer (with the numbers num() below turns into text, 7%
-- of Redis's instructions in a W1 burn-down, bench/redis-callgrind.sh).
local function int(n)
  if n % 1 == 0 and n > -9e15 and n < 9e15 then return string.format('%d', n) end
  return string.format('%.0f', n)
end

-- A number as text, memoised (versions, attempts, lease expiries, priorities repeat within a step):
-- '%d' for integers, else '%.17g', the text Redis makes of a number passed to redis.call (Redis 7.0
-- uses '%.17g' for every number, through glibc's floating-point printer).
local memo = {}
local function num(n)
  if n ~= n then return 'nan' end -- NaN: no table key (Redis refuses it as a score anyway)
  local s = memo[n]
  if not s then
    if n % 1 == 0 and n > -9e15 and n < 9e15 then s = string.format('%d', n) else s = string.format('%.17g', n) end
    memo[n] = s
  end
  return s
end
local function pad(n)
  if n % 1 == 0 and n >= 0 and n < 9e15 then return string.format('%016d', n) end
  return string.format('%016.0f', n)
end

-- `cmd key a1 a2 ...` over `list`, in chunks (Lua's unpack has a stack limit); nothing when empty.
local function many(cmd, key, list)
  local n = #list
  for i = 1, n, 1000 do call(cmd, key, unpack(list, i, math.min(n, i + 999))) end
end

-- HMGET over any number of fields; the reply is aligned with `fields` (false where missing).
local function hmget(key, fields)
  local out, n = {}, #fields
  for i = 1, n, 1000 do
    local r = call('HMGET', key, unpack(fields, i, math.min(n, i + 999)))
    for k = 1, #r do out[i + k - 1] = r[k] end
  end
  return out
end

-- Appends values to the list t[key] (made on first use).
local function push(t, key, a, b)
  local list = t[key]
  if not list then list = {}; t[key] = list end
  list[#list + 1] = a
  if b ~= nil then list[#list + 1] = b end
end

-- JSON string literal (memoised: node ids repeat across runs); safe characters skip cjson.
local jcache = {}
local function jstr(s)
  local j = jcache[s]
  if j then return j end
  if string.find(s, '[%c"\\/\128-\255]') then j = cjson.encode(s) else j = '"' .. s .. '"' end
  jcache[s] = j
  return j
end

-- Ready rows: read once per step (one HMGET), changed here, written back by flush_rows (one HSET, one
-- HDEL, one ZREM/ZADD per queue zset). row = { seq (16 digits), queue, priority, attempts, worker,
-- token, expires, task, args, options JSON ('' = none), availableAt (0 = now) }; MessagePack keeps the
-- numbers numbers (no parsing, no formatting).
local rows, dirty, is_dirty = {}, {}, {}
-- Where each loaded row sits in the queue index when read: zset key (false: nowhere), score, member.
local pkey, pscore, pmember = {}, {}, {}

local function unpack_row(s)
  local r = { cmsgpack.unpack(s) }
  if r[10] == nil then r[10], r[11] = '', 0 end -- a row written before delayed readiness
  return r
end

-- The zsets of a queue (names built once per script): { q = P:q:<queue>, l = P:l:<queue>, d = P:d:<queue> }.
local qkeys = {}
local function zsets(queue)
  local z = qkeys[queue]
  if not z then
    z = { q = P .. 'q:' .. queue, l = P .. 'l:' .. queue, d = P .. 'd:' .. queue }
    qkeys[queue] = z
  end
  return z
end

-- The queue-index zset of a row, and its score there.
local function zkey(r)
  if r[6] ~= '' then return zsets(r[2]).l, r[7] end
  if r[11] ~= 0 then return zsets(r[2]).d, r[11] end
  return zsets(r[2]).q, -r[3]
end

local function load_rows(keys)
  local need = {}
  for _, k in ipairs(keys) do
    if rows[k] == nil then rows[k] = false; pkey[k] = false; need[#need + 1] = k end
  end
  if #need == 0 then return end
  local vals = hmget(K_ROWS, need)
  for i, k in ipairs(need) do
    if vals[i] then
      local r = unpack_row(vals[i])
      rows[k] = r
      pkey[k], pscore[k] = zkey(r)
      pmember[k] = r[1] .. NUL .. k
    end
  end
end

-- flush_rows: a zset written with at least BULK / 2 members at once is made a skiplist first, with the
-- member LONG (never a row's: those start with 16 digits), added and removed in the same step.
local BULK = 32
local LONG = string.rep('~', 65)

local function touch(k)
  if not is_dirty[k] then is_dirty[k] = true; dirty[#dirty + 1] = k end
end

local function flush_rows()
  local hset, hdel, zrem, zadd = {}, {}, {}, {}
  for _, k in ipairs(dirty) do
    local r, wkey = rows[k], pkey[k]
    local nkey, nscore = false, nil
    if r then
      nkey, nscore = zkey(r)
      hset[#hset + 1] = k
      hset[#hset + 1] = cmsgpack.pack(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])
    else
      hdel[#hdel + 1] = k
    end
    if wkey and wkey ~= nkey then push(zrem, wkey, pmember[k]) end
    if nkey and not (wkey == nkey and pscore[k] == nscore) then
      local m = pmember[k] or (r[1] .. NUL .. k)
      pmember[k] = m
      push(zadd, nkey, num(nscore), m)
    end
    pkey[k], pscore[k] = nkey, nscore
    if not r then pmember[k] = nil end
  end
  many('HSET', K_ROWS, hset)
  many('HDEL', K_ROWS, hdel)
  for key, list in pairs(zrem) do many('ZREM', key, list) end
  for key, list in pairs(zadd) do
    if #list >= BULK then
      -- A zset of up to 128 short members is a listpack, where each ZADD scans every member (a claim of 50
      -- into a leased zset of 100 cost ~3 us a member, 8x a skiplist's). A member longer than 64 bytes
      -- makes it a skiplist, which it stays after that member is removed again (here, in this step).
      call('ZADD', key, '+inf', LONG)
      many('ZADD', key, list)
      call('ZREM', key, LONG)
    else
      many('ZADD', key, list)
    end
  end
  dirty, is_dirty = {}, {}
end

-- Takes every ready row of these runs out of the queue (their NodeReady events name the candidates).
local function drop_rows(runIds)
  local keys = {}
  for _, runId in ipairs(runIds) do
    local v = tonumber(call('HGET', K_VER, runId) or '0')
    local fields = {}
    for n = 1, v do fields[n] = runId .. NUL .. int(n) end
    for _, item in ipairs(hmget(K_EV, fields)) do
      if item and string.find(item, '"NodeReady"', 1, true) then
        local ok, e = pcall(cjson.decode, string.sub(item, string.find(item, ':', 1, true) + 1))
        if ok and type(e) == 'table' and e.type == 'NodeReady' and type(e.nodeId) == 'string' then keys[#keys + 1] = runId .. NUL .. e.nodeId end
      end
    end
  end
  load_rows(keys)
  for _, k in ipairs(keys) do
    if rows[k] then rows[k] = false; touch(k) end
  end
  flush_rows()
end

local function wake(woke)
  if woke then call('PUBLISH', P .. 'ready', ARGV[3]) end
end

-- Whether a P:ev item is the event of this position (not a later run's event under a reused run id).
local function at_position(item, position)
  if not item then return false end
  local pre = int(position) .. ':'
  return string.sub(item, 1, #pre) == pre
end

-- A run record: { status, createdAt, updatedAt, finishedVersion|false, quarantineReason|false, version }, or nil.
local function record(runId)
  local v = call('HGET', K_VER, runId)
  if not v then return nil end
  local qr = call('HGET', K_QR, runId)
  return { qr and 'quarantined' or call('HGET', K_ST, runId), call('HGET', K_CR, runId), call('HGET', K_UP, runId), call('HGET', K_FIN, runId), qr, tonumber(v) }
end
