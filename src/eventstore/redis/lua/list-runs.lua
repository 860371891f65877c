-- listRuns: run records newest first (createdAt, then runId, descending), filtered.
-- Scans at most ARGV[7] index entries per call, so a filter that matches little never blocks Redis
-- for long: the reply then carries a cursor and the client calls again from there.
-- KEYS: the 14 global keys (see lib.lua); reads P:runs, the run fields and (text filter) P:ev.
-- ARGV[1] prefix P, ARGV[2], ARGV[3] unused
-- ARGV[4] max lex bound of P:runs ('+', or '(' .. member), ARGV[5] min lex bound ('-' or '[' .. createdAt)
-- ARGV[6] limit, ARGV[7] scan budget, ARGV[8] statuses ("|running|failed|", '' = any),
-- ARGV[9] task ('' = any, else "|name|"), ARGV[10] text flag ('1' = filter), ARGV[11] text
-- Returns { cursor ('' when the scan reached the end or the page is full), then 7 values per run:
-- runId, status, createdAt, updatedAt, finishedVersion|nil, quarantineReason|nil, version }.
local limit, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local statuses, task, text = ARGV[8], ARGV[9], ARGV[10] == '1' and ARGV[11] or nil
local out = { '' }
local found, scanned, max = 0, 0, ARGV[4]
while scanned < budget do
  local page = call('ZREVRANGEBYLEX', K_RUNS, max, ARGV[5], 'LIMIT', 0, math.min(200, budget - scanned))
  if #page == 0 then return out end
  local ids = {}
  for n, m in ipairs(page) do ids[n] = string.sub(m, 18) end
  local qr, st = hmget(K_QR, ids), hmget(K_ST, ids)
  local tk = task ~= '' and hmget(K_TK, ids) or nil
  local firsts
  if text then
    local fields = {}
    for n, id in ipairs(ids) do fields[n] = id .. NUL .. '1' end
    firsts = hmget(K_EV, fields)
  end
  for n, id in ipairs(ids) do
    scanned = scanned + 1
    max = '(' .. page[n]
    local status = qr[n] and 'quarantined' or st[n]
    local ok = status and (statuses == '' or string.find(statuses, '|' .. status .. '|', 1, true))
    if ok and tk then ok = string.find(tk[n] or '', task, 1, true) end
    if ok and firsts then
      local item = firsts[n] or ''
      ok = string.find(item, text, (string.find(item, ':', 1, true) or 0) + 1, true)
    end
    if ok then
      local r = record(id)
      if r then
        local k = #out
        out[k + 1], out[k + 2], out[k + 3], out[k + 4] = id, r[1], r[2], r[3]
        out[k + 5], out[k + 6], out[k + 7] = r[4], r[5], r[6]
        found = found + 1
        if found >= limit then return out end
      end
    end
  end
end
out[1] = max
return out
