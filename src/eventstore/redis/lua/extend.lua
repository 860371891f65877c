-- extend: moves the expiry of leases still held (the token matches) to now + leaseMs.
-- KEYS: the 14 global keys (see lib.lua); reads and writes P:rows and the leased zsets.
-- ARGV[1] prefix P, ARGV[2] clock override ('' = Redis TIME), ARGV[3] instance id (unused)
-- ARGV[4] leaseMs, then per lease: runId, nodeId, lease token
-- Returns one 1 (extended) or 0 (lost) per lease.
local expires = clock() + tonumber(ARGV[4])
local keys = {}
for i = 5, #ARGV, 3 do keys[#keys + 1] = ARGV[i] .. NUL .. ARGV[i + 1] end
load_rows(keys)
local out = {}
for n, k in ipairs(keys) do
  local r = rows[k]
  local token = ARGV[5 + (n - 1) * 3 + 2]
  if r and r[6] ~= '' and r[6] == token then
    r[7] = expires
    touch(k)
    out[n] = 1
  else
    out[n] = 0
  end
end
flush_rows()
return out
