-- readAll: events of every run after a global position, in position order. Reads at most ARGV[6]
-- entries of P:log per call (dead ones are skipped); the client calls again from the returned position.
-- KEYS: the 14 global keys (see lib.lua); reads P:base, P:log and P:ev.
-- ARGV[1] prefix P, ARGV[2], ARGV[3] unused, ARGV[4] after position, ARGV[5] limit, ARGV[6] scan budget
-- Returns { last position scanned (-1: the end of the log was reached), then per event:
-- runId \0 version, "<position>:<event JSON>" }.
local after, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local base = tonumber(call('GET', K_BASE) or '0')
local index = math.max(after, base) - base
local out = { -1 }
local found, scanned = 0, 0
while found < limit do
  if scanned >= budget then
    out[1] = base + index
    return out
  end
  local fields = call('LRANGE', K_LOG, index, index + math.min(1000, limit - found, budget - scanned) - 1)
  if #fields == 0 then return out end
  local items = hmget(K_EV, fields)
  for j = 1, #fields do
    if at_position(items[j], base + index + j) then
      out[#out + 1] = fields[j]
      out[#out + 1] = items[j]
      found = found + 1
    end
  end
  index = index + #fields
  scanned = scanned + #fields
end
out[1] = base + index
return out
