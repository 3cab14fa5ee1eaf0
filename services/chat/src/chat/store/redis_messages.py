"""The last messages of each conversation in Redis, written through; cache-aside for history.

One hash per conversation, ``chat:recent:{conv:<id>}``: field ``<seq>`` -> ``<version>|<message>``,
plus ``f`` (floor) and ``h`` (high): the hash claims to hold every message with
``f < seq <= h``. A reader checks the claim (each wanted number present) and otherwise reads the
database and fills the hash. One Lua script does every write, so that:

- a post on a missing hash starts one (floor = seq - 1): the next posts extend it;
- an edit or delete on a missing hash stores the new version without claiming any range, so a
  fill that read the database before the edit cannot bring the old version back (the higher
  ``version`` always wins);
- a fill merges: it never lowers ``h``, and extends ``f`` downwards only when it reaches the
  current range (no hole can be claimed);
- the range is trimmed to the last ``RECENT_SIZE`` numbers; a write that starts the hash, every
  edit, delete and fill, and every 16th post renew the TTL (a day: renewing it on each post
  cost a command per post for nothing);
- the script reads with one ``HMGET`` and writes with one ``HSET`` (and one ``HDEL`` to trim):
  a post costs five commands on the node, not eight;
- a post, edit or delete publishes its real-time frame on the conversation's channel (same slot)
  in the same call, after the write: one round trip for the cache and the real-time fast path.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from chat.domain.messages import Draft, Message, window
from chat.store.protocols import Announce, Announcement
from chat.store.sql_messages import SqlMessages
from chat.store.ttl import RECENT_SIZE
from contracts import registry
from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.ttl import TtlRule

# KEYS[1]: the hash. ARGV: mode (post|update|fill), ttl_ms, cap, top (fill: the last seq when
# loaded), then an announcement (publish command, channel, payload; three empty strings for
# none), then (seq, version, payload) triples. The channel is the conversation's real-time
# channel, in the hash's slot ({conv:<id>}); it is a channel, not a key, so it is not in KEYS.
_WRITE = """
local key, mode = KEYS[1], ARGV[1]
local ttl, cap, top = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local names = {'f', 'h'}
for i = 8, #ARGV, 3 do names[#names + 1] = ARGV[i] end
local cur = redis.call('HMGET', key, unpack(names))
local f, h = tonumber(cur[1]), tonumber(cur[2])
local fresh, oldh = h == nil, h
local best, order = {}, {}
local low, high
local n = 2
for i = 8, #ARGV, 3 do
  n = n + 1
  local seq, ver = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if f == nil or seq > f then
    local field = ARGV[i]
    local known = best[field]
    local curver = -1
    if known then curver = known[1]
    elseif cur[n] then curver = tonumber(string.match(cur[n], '^(%d+)|')) end
    if ver > curver then
      if not known then order[#order + 1] = field end
      best[field] = {ver, ver .. '|' .. ARGV[i + 2], seq}
    end
  end
  if low == nil or seq < low then low = seq end
  if high == nil or seq > high then high = seq end
end
if mode == 'post' and high then
  if h == nil then f, h = low - 1, high elseif high > h then h = high end
elseif mode == 'fill' then
  local bf = (low or (top + 1)) - 1
  if h == nil then f, h = bf, top
  elseif top >= f then
    if bf < f then f = bf end
    if top > h then h = top end
  end
end
local trim_from, trim_to
if h ~= nil and h - f > cap then
  trim_from, trim_to = f + 1, h - cap
  f = h - cap
end
local sets = {}
for _, field in ipairs(order) do
  local b = best[field]
  if trim_to == nil or b[3] > trim_to then
    sets[#sets + 1] = field
    sets[#sets + 1] = b[2]
  end
end
if h ~= nil then
  sets[#sets + 1] = 'f'
  sets[#sets + 1] = f
  sets[#sets + 1] = 'h'
  sets[#sets + 1] = h
end
if #sets > 0 then redis.call('HSET', key, unpack(sets)) end
if trim_to ~= nil then
  local gone = {}
  for s = trim_from, trim_to do
    gone[#gone + 1] = tostring(s)
    if #gone == 1000 then redis.call('HDEL', key, unpack(gone)); gone = {} end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
end
if fresh or mode ~= 'post' or math.floor(h / 16) ~= math.floor(oldh / 16) then
  redis.call('PEXPIRE', key, ttl)
end
if ARGV[5] ~= '' then redis.call(ARGV[5], ARGV[6], ARGV[7]) end
return 1
"""


class _Cached(msgspec.Struct, array_like=True, frozen=True):
    id: str
    seq: int
    sender_id: str
    client_msg_id: str
    body: str
    created_at: datetime
    mentions: tuple[str, ...]
    edited_at: datetime | None
    deleted: bool
    version: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Cached)


class RecentMessages:
    """The recent-message hash of each conversation."""

    def __init__(
        self, client: AnyRedis, keyspace: KeySpace, *, rule: TtlRule, size: int = RECENT_SIZE
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self._rule = rule
        self.size = size
        self._script = client.register_script(_WRITE)

    def key(self, conversation_id: str) -> str:
        """``chat:recent:{conv:<id>}``."""
        return self._keyspace.key("recent", tag=f"conv:{conversation_id}")

    async def write(
        self,
        conversation_id: str,
        batch: list[Message],
        *,
        mode: str,
        top: int = 0,
        announce: Announcement | None = None,
    ) -> None:
        """Run the write script (``mode``: post, update or fill); it publishes ``announce``
        (on the conversation's channel) after the write, in the same call."""
        args: list[str | int | bytes] = [mode, self._rule.sample_ms(), self.size, top]
        if announce is None:
            args += ["", "", ""]
        else:
            if announce.command not in ("SPUBLISH", "PUBLISH"):
                raise ValueError(f"not a publish command: {announce.command}")
            if announce.channel != self.channel(conversation_id):
                raise ValueError(f"{announce.channel} is not the channel of {conversation_id}")
            args += [announce.command, announce.channel, announce.payload]
        for m in batch:
            args += [m.seq, m.version, _encoder.encode(_cached(m))]
        await self._script(keys=[self.key(conversation_id)], args=args, client=self._client)

    def channel(self, conversation_id: str) -> str:
        """The conversation's real-time channel (in the hash's slot): where the script publishes."""
        return registry.channel("rt.conv").key(conversation_id)

    async def read(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message] | None:
        """The requested window from the hash, or None when the hash cannot vouch for it."""
        raw = await self._client.hgetall(self.key(conversation_id))
        if not raw:
            return None
        fields = {_text(k): v for k, v in raw.items()}
        if "f" not in fields or "h" not in fields:
            return None
        floor, high = int(fields["f"]), int(fields["h"])
        span = window(last_seq=high, before=before, after=after, limit=limit)
        if span.first <= span.last and span.first <= floor:
            return None
        if span.first > span.last and after is not None and after < floor:
            return None
        found = []
        for seq in span.seqs:
            value = fields.get(str(seq))
            if value is None:
                return None
            payload = value.split(b"|", 1)[1] if isinstance(value, bytes) else None
            if payload is None:
                return None
            found.append(_message(conversation_id, _decoder.decode(payload)))
        return found

    async def drop(self, conversation_id: str) -> None:
        """Forget a conversation's hash (tests and operators)."""
        await self._client.delete(self.key(conversation_id))


class CachedMessages:
    """The message store with the recent-message cache in front (write-through, cache-aside)."""

    def __init__(self, sql: SqlMessages, recent: RecentMessages) -> None:
        self._sql = sql
        self._recent = recent

    async def append(
        self, draft: Draft, *, announce: Announce | None = None
    ) -> tuple[Message, bool]:
        """Store in the database, then write the message through to the cache (and publish
        ``announce`` in the same script call)."""
        message, replay = await self._sql.append(draft)
        await self._recent.write(
            message.conversation_id,
            [message],
            mode="post",
            announce=None if announce is None else announce(message),
        )
        return message, replay

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        """From the database (edits and deletes start here, so they see the truth)."""
        return await self._sql.get(conversation_id, seq)

    async def save(self, message: Message, *, announce: Announce | None = None) -> bool:
        """Store the change, then write the new version through (publishing ``announce``)."""
        saved = await self._sql.save(message)
        if saved:
            await self._recent.write(
                message.conversation_id,
                [message],
                mode="update",
                announce=None if announce is None else announce(message),
            )
        return saved

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """From the cache when it holds the whole window, else from the database (and fill)."""
        cached = await self._recent.read(conversation_id, before=before, after=after, limit=limit)
        if cached is not None:
            return cached
        latest, top = await self._sql.latest(conversation_id, self._recent.size)
        await self._recent.write(conversation_id, latest, mode="fill", top=top)
        return await self._sql.history(conversation_id, before=before, after=after, limit=limit)


def _cached(m: Message) -> _Cached:
    return _Cached(
        id=m.id,
        seq=m.seq,
        sender_id=m.sender_id,
        client_msg_id=m.client_msg_id,
        body=m.body,
        created_at=m.created_at,
        mentions=m.mentions,
        edited_at=m.edited_at,
        deleted=m.deleted,
        version=m.version,
    )


def _message(conversation_id: str, c: _Cached) -> Message:
    return Message(
        id=c.id,
        conversation_id=conversation_id,
        seq=c.seq,
        sender_id=c.sender_id,
        client_msg_id=c.client_msg_id,
        body=c.body,
        created_at=c.created_at,
        mentions=c.mentions,
        edited_at=c.edited_at,
        deleted=c.deleted,
        version=c.version,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
