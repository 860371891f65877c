-- take-token: EventStore.takeToken, the sliding-window log of src/eventstore/rate/window.ts. A permit is
-- granted only while fewer than `count` were granted in (now - periodMs, now]; the run-time override of
-- the key (set-rate-limit.lua), when there is one, replaces the caller's limit.
-- KEYS: the 14 global keys (see lib.lua; none used). Keys built from the prefix:
--   P:rate        hash    key -> "<count>:<periodMs>": the run-time overrides
--   P:rl:<key>    list    the key's log, newest slot first: "<time of the slot's newest grant>:<grants>";
--                         slots whose time is periodMs old or more are popped off the tail
--   P:rn:<key>    string  the sum of the grants in P:rl:<key>
--   P:rt:<key>    string  with turns (EventStore.takeTurn): the latest turn handed out, "<at>:<room left>"
--   All three expire once they no longer matter (the log periodMs after the last grant, when every slot
--   has left the window; the turn a period after it); not with an injected clock (tests), whose time is
--   not Redis's.
-- ARGV[1] prefix P, ARGV[2] clock override ('' = Redis TIME), ARGV[3] instance id (unused)
-- ARGV[4] key, ARGV[5] count ('' = no limit unless overridden), ARGV[6] periodMs, ARGV[7] '1': book turns
-- Returns 0 (granted), -1 (no limit and no override: nothing taken) or the ms to wait (nothing taken):
-- with turns, the ms until the caller's turn (nextTurn in src/eventstore/rate/window.ts).
local key = ARGV[4]
local count, period
local override = call('HGET', P .. 'rate', key)
if override then
  local c, p = string.match(override, '^(%d+):(%d+)$')
  count, period = tonumber(c), tonumber(p)
elseif ARGV[5] == '' then
  return -1
else
  count, period = tonumber(ARGV[5]), tonumber(ARGV[6])
end

local lk, nk = P .. 'rl:' .. key, P .. 'rn:' .. key
local now = clock()
local edge = now - period
local function slot(s)
  local t, n = string.match(s, '^(%d+):(%d+)$')
  return tonumber(t), tonumber(n)
end

-- Slots that left the window go from the tail.
local sum = tonumber(call('GET', nk) or '0')
local dropped = false
while sum > 0 do
  local tail = call('LINDEX', lk, -1)
  if not tail then sum = 0; break end
  local t, n = slot(tail)
  if t > edge then break end
  call('RPOP', lk)
  sum = sum - n
  dropped = true
end
if sum <= 0 then
  if dropped or call('EXISTS', nk) == 1 then call('DEL', lk, nk) end
  sum = 0
elseif dropped then
  call('SET', nk, int(sum), 'KEEPTTL')
end

-- A refused caller's turn: the first `count` come back at `wait`, the next `count` a period and a margin
-- later, and so on, never more than the horizon ahead (then: ask again at the horizon, unbooked).
local function turn(wait)
  local tk = P .. 'rt:' .. key
  local at, left
  local cur = call('GET', tk)
  if cur then at, left = slot(cur) end
  if not at or at < now + wait then
    at, left = now + wait, count - 1
  elseif left > 0 then
    left = left - 1
  else
    at = at + period + math.max(20, math.ceil(period / 20))
    local horizon = math.max(60000, 4 * period)
    if at - now > horizon then return horizon end
    left = count - 1
  end
  if ARGV[2] == '' then
    call('SET', tk, int(at) .. ':' .. int(left), 'PX', int(at - now + period))
  else
    call('SET', tk, int(at) .. ':' .. int(left))
  end
  return at - now
end

if sum >= count then
  -- Refused: wait until enough of the oldest slots leave the window for one more permit.
  local need = sum - count + 1
  local from = 0
  local wait
  repeat
    local chunk = call('LRANGE', lk, -(from + 32), -(from + 1))
    if #chunk == 0 then wait = 1; break end
    for i = #chunk, 1, -1 do
      local t, n = slot(chunk[i])
      need = need - n
      if need <= 0 then wait = t + period - now; break end
    end
    from = from + #chunk
  until wait
  if ARGV[7] == '1' then return turn(wait) end
  return wait
end

-- Granted: into the newest slot when it is the same slot (or the clock stepped back), else a new one.
local g = 1
if count > 1000 then g = math.max(1, math.floor(period / 1000)) end
local head = call('LINDEX', lk, 0)
local ht, hn
if head then ht, hn = slot(head) end
if head and (now <= ht or math.floor(now / g) == math.floor(ht / g)) then
  call('LSET', lk, 0, int(math.max(now, ht)) .. ':' .. int(hn + 1))
else
  call('LPUSH', lk, int(now) .. ':1')
end
call('SET', nk, int(sum + 1))
if ARGV[2] == '' then
  call('PEXPIRE', lk, period)
  call('PEXPIRE', nk, period)
end
return 0
