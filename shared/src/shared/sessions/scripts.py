"""The session store's Lua scripts. Each touches one session key and its user's index (one slot).

Times are milliseconds of the Redis clock (``TIME``), so instances with skewed clocks agree on
expiry.
The index is a sorted set of session handles scored by each session's absolute deadline.
"""

from __future__ import annotations

from typing import Final

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: session, index. ARGV: sealed value, handle, idle ms, max ms. Returns the deadline (ms).
CREATE: Final = (
    _NOW
    + """
local idle, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local deadline = now + max
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.min(idle, max))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], deadline, ARGV[2])
if redis.call('PTTL', KEYS[2]) < max then redis.call('PEXPIRE', KEYS[2], max) end
return deadline
"""
)

# KEYS: session, index. ARGV: handle, idle ms, touch (0/1). Returns {value, deadline ms} or nil.
GET: Final = (
    _NOW
    + """
local value = redis.call('GET', KEYS[1])
if not value then return false end
local deadline = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
if not deadline or deadline <= now then
  -- Not in the index (revoked mid-way) or past its absolute lifetime: it is gone.
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if ARGV[3] == '1' then
  redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[2]), deadline - now))
end
return {value, deadline}
"""
)

# KEYS: session, index. ARGV: handle. Returns 1 if a live session was deleted.
REVOKE: Final = """
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""

# KEYS: index, session keys... ARGV: their handles. Returns how many live sessions were deleted.
REVOKE_MANY: Final = """
local deleted = 0
for i = 2, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
redis.call('ZREM', KEYS[1], unpack(ARGV))
return deleted
"""

ALL: Final = {"create": CREATE, "get": GET, "revoke": REVOKE, "revoke_many": REVOKE_MANY}
