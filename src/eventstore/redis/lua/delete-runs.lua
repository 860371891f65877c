-- deleteRuns: deletes runs whole (events, ready rows and their queue entries, delayed ones included, the run's fields) in
-- one step, then trims the dead entries off the head of the global order. Other runs keep their positions.
-- KEYS: the 14 global keys (see lib.lua)
-- ARGV[1] prefix P, ARGV[2] clock override (unused), ARGV[3] instance id (unused)
-- ARGV[4] only these statuses, comma-separated ('' for any), checked here, atomically
-- ARGV[5..] run ids
-- Returns how many runs were deleted.
local n = 0
local only = ARGV[4]
for i = 5, #ARGV do
  local runId = ARGV[i]
  local v = call('HGET', K_VER, runId)
  local status = call('HGET', K_ST, runId)
  local effective = call('HEXISTS', K_QR, runId) == 1 and 'quarantined' or status
  if v and (only == '' or string.find(',' .. only .. ',', ',' .. tostring(effective) .. ',', 1, true)) then
    n = n + 1
    -- A succeeded or failed run has no ready rows left (it ends when nothing is ready or running).
    if call('HEXISTS', K_QR, runId) == 1 or (status ~= 'succeeded' and status ~= 'failed') then drop_rows({ runId }) end
    local fields = {}
    for k = 1, tonumber(v) do fields[k] = runId .. NUL .. int(k) end
    many('HDEL', K_EV, fields)
    local created = call('HGET', K_CR, runId)
    if created then call('ZREM', K_RUNS, pad(math.max(0, tonumber(created))) .. NUL .. runId) end
    for _, key in ipairs({ K_VER, K_ST, K_CR, K_UP, K_FIN, K_QR, K_TK, K_LA }) do call('HDEL', key, runId) end
  end
end
-- Runs are mostly deleted oldest first (retention), so dead entries gather at the head of P:log.
local base = tonumber(call('GET', K_BASE) or '0')
local trimmed = 0
while trimmed < 100000 do
  local head = call('LRANGE', K_LOG, 0, 999)
  if #head == 0 then break end
  local items = hmget(K_EV, head)
  local dead = 0
  for j = 1, #head do
    if at_position(items[j], base + trimmed + j) then break end
    dead = j
  end
  if dead == 0 then break end
  call('LTRIM', K_LOG, dead, -1)
  trimmed = trimmed + dead
  if dead < #head then break end
end
if trimmed > 0 then call('INCRBY', K_BASE, trimmed) end
return n
