"""Lua scripts of the presence store. Every per-user script touches only keys tagged
``{user:<id>}`` (one slot); every due-set script touches one due-set partition.

Per-user keys: ``devices`` (sorted set device -> expiry ms) and ``state`` (hash: ``status`` as last
announced, ``last_seen`` ms, ``offline_at`` ms while a grace runs). Each script returns
``{changed, next_due, last_seen}``: ``changed`` is 1 for exactly one caller per transition,
``next_due`` (ms, -1 for none) is when the user must be looked at again.
"""

from __future__ import annotations

# KEYS: devices, state. ARGV: now, device ttl ms, device, state retention ms.
CONNECT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
local changed = 0
if redis.call('HGET', KEYS[2], 'status') ~= 'online' then
  redis.call('HSET', KEYS[2], 'status', 'online')
  changed = 1
end
redis.call('HSET', KEYS[2], 'last_seen', now)
redis.call('HDEL', KEYS[2], 'offline_at')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {changed, tonumber(top[2]), now}
"""

# KEYS: devices, state. ARGV: now, device, grace ms, state retention ms.
DISCONNECT = """
local now = tonumber(ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('HGET', KEYS[2], 'status') ~= 'online' then
  return {0, -1, tonumber(redis.call('HGET', KEYS[2], 'last_seen') or -1)}
end
redis.call('HSET', KEYS[2], 'last_seen', now)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if redis.call('ZCARD', KEYS[1]) > 0 then
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  return {0, tonumber(top[2]), now}
end
local grace = tonumber(ARGV[3])
if grace <= 0 then
  redis.call('HSET', KEYS[2], 'status', 'offline')
  redis.call('HDEL', KEYS[2], 'offline_at')
  return {1, -1, now}
end
redis.call('HSET', KEYS[2], 'offline_at', now + grace)
return {0, now + grace, now}
"""

# KEYS: devices, state. ARGV: now. Settles a user whose devices expired or whose grace ended.
SETTLE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last_seen = tonumber(redis.call('HGET', KEYS[2], 'last_seen') or -1)
if redis.call('HGET', KEYS[2], 'status') ~= 'online' then
  return {0, -1, last_seen}
end
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('HDEL', KEYS[2], 'offline_at')
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  return {0, tonumber(top[2]), last_seen}
end
local at = tonumber(redis.call('HGET', KEYS[2], 'offline_at') or -1)
if at > now then
  return {0, at, last_seen}
end
redis.call('HSET', KEYS[2], 'status', 'offline')
redis.call('HDEL', KEYS[2], 'offline_at')
return {1, -1, last_seen}
"""

# KEYS: due set. ARGV: user, due ms. Earliest wins: looking at a user too early is harmless.
SCHEDULE = """
redis.call('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
return 1
"""

# KEYS: due set. ARGV: triples (user, score it was taken at, next due or -1). An entry that
# changed since it was taken was rescheduled meanwhile: keep the earlier of the two.
RESCHEDULE = """
for i = 1, #ARGV, 3 do
  local user, taken, next_due = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local score = redis.call('ZSCORE', KEYS[1], user)
  if score and tonumber(score) == tonumber(taken) then
    if next_due < 0 then
      redis.call('ZREM', KEYS[1], user)
    else
      redis.call('ZADD', KEYS[1], next_due, user)
    end
  elseif next_due >= 0 then
    redis.call('ZADD', KEYS[1], 'LT', next_due, user)
  end
end
return 1
"""
