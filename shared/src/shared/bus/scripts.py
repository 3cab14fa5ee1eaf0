"""The Lua scripts of the bus. Each touches keys of one slot, so it runs atomically on one node."""

from __future__ import annotations

from typing import Final

ACK_AND_MARK: Final = """
-- KEYS[1] = partition stream, KEYS[2..m+1] = "handled" marks to set, KEYS[m+2..] = kept replies
-- ARGV[1] = group, ARGV[2] = mark TTL in ms, ARGV[3] = m, ARGV[4] = reply TTL in ms,
-- ARGV[5] = r (replies), ARGV[6..5+r] = the replies, ARGV[6+r..] = entry ids to acknowledge
local m, r = tonumber(ARGV[3]), tonumber(ARGV[5])
for i = 2, m + 1 do
  redis.call('SET', KEYS[i], '1', 'PX', ARGV[2])
end
for i = 1, r do
  redis.call('SET', KEYS[m + 1 + i], ARGV[5 + i], 'PX', ARGV[4])
end
if #ARGV < 6 + r then return 0 end
return redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 6 + r))
"""

LEASE_ACQUIRE: Final = """
-- Take the lease if free, or renew it if ours. KEYS[1] = lease, ARGV = owner, ttl ms
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

LEASE_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

SAFE_TRIM: Final = """
-- Trim a partition to its retention, but never past an entry some group has not acknowledged
-- (pending) or not yet read (after its last-delivered id).
-- KEYS[1] = stream; ARGV[1] = max length (0: none), ARGV[2] = min id by age ('' : none),
-- ARGV[3] = most entries one call may examine for the length rule.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function after(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end
local cut = nil
local maxlen = tonumber(ARGV[1])
if maxlen > 0 then
  local excess = redis.call('XLEN', key) - maxlen
  if excess > 0 then
    if excess > tonumber(ARGV[3]) then excess = tonumber(ARGV[3]) end
    local r = redis.call('XRANGE', key, '-', '+', 'COUNT', excess)
    cut = after(r[#r][1])
  end
end
if ARGV[2] ~= '' and (cut == nil or less(cut, ARGV[2])) then cut = ARGV[2] end
if cut == nil then return 0 end
local groups = redis.call('XINFO', 'GROUPS', key)
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  local nxt = after(info['last-delivered-id'])
  if less(nxt, cut) then cut = nxt end
  if tonumber(info['pending']) > 0 then
    local p = redis.call('XPENDING', key, info['name'])
    if p[2] and less(p[2], cut) then cut = p[2] end
  end
end
return redis.call('XTRIM', key, 'MINID', cut)
"""

XADD_MANY: Final = """
-- Append several entries to one stream in one call. KEYS[1] = stream;
-- ARGV = n1, field, value, ... (n1 pairs), n2, field, value, ... ; returns the new ids in order.
local ids = {}
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local args = {}
  for j = 1, 2 * n do args[j] = ARGV[i + j] end
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(args))
  i = i + 2 * n + 1
end
return ids
"""
