"""Redis key building: ``<service>:<entity>:{<tag>}:<rest>``, and slot checks for multi-key calls.

No service concatenates key strings by hand: a :class:`KeySpace` owned by the service builds them.
The part in braces is the cluster hash tag, so keys built with the same tag land in the same slot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


class KeyGrammarError(ValueError):
    """A key part breaks the key grammar."""


class CrossSlotError(ValueError):
    """Keys meant for one multi-key command or script hash to different cluster slots."""


def _check_part(kind: str, value: str) -> str:
    if not value:
        raise KeyGrammarError(f"{kind} must not be empty")
    if any(c in value for c in "{}"):
        raise KeyGrammarError(f"{kind} must not contain braces: {value!r}")
    return value


class KeySpace:
    """The keys of one service: every key starts with ``<prefix>:``.

    >>> ks = KeySpace("chat")
    >>> ks.key("messages", tag="conv:42", rest="recent")
    'chat:messages:{conv:42}:recent'
    """

    def __init__(self, prefix: str) -> None:
        if not _NAME.match(prefix):
            raise KeyGrammarError(
                f"service prefix must match {_NAME.pattern} (no braces, no colons): {prefix!r}"
            )
        self.prefix = prefix

    def key(self, entity: str, *, tag: str, rest: str | Iterable[str] = ()) -> str:
        """``<prefix>:<entity>:{<tag>}`` followed by ``:<rest>`` parts, if any."""
        _check_part("entity", entity)
        if ":" in entity:
            raise KeyGrammarError(f"entity must not contain ':': {entity!r}")
        _check_part("tag", tag)
        parts = [rest] if isinstance(rest, str) else list(rest)
        for part in parts:
            _check_part("key part", part)
        tail = "".join(f":{p}" for p in parts)
        return f"{self.prefix}:{entity}:{{{tag}}}{tail}"

    def pattern(self) -> str:
        """The ACL/SCAN pattern that covers every key of this service."""
        return f"{self.prefix}:*"


def slot_of(key: str | bytes) -> int:
    """The cluster slot a key hashes to (honouring its hash tag)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def same_slot(*keys: str | bytes) -> int:
    """The common slot of ``keys``, or :class:`CrossSlotError` before anything is sent."""
    if not keys:
        raise CrossSlotError("no keys given")
    slots = {slot_of(k) for k in keys}
    if len(slots) != 1:
        raise CrossSlotError(f"keys span slots {sorted(slots)}: {[str(k) for k in keys]}")
    return slots.pop()


class SlotCheckedScript:
    """A Lua script that refuses keys spanning cluster slots before anything is sent.

    Redis would answer CROSSSLOT anyway, but only after a round trip, and a single-node Redis
    would not refuse at all: checking here keeps code that must run on a cluster honest everywhere.
    """

    def __init__(self, client: RedisCluster | Redis, source: str) -> None:
        self._script = client.register_script(source)

    async def __call__(self, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run the script; raises :class:`CrossSlotError` when ``keys`` span slots."""
        if len(keys) > 1:
            same_slot(*keys)
        return await self._script(keys=list(keys), args=list(args))
