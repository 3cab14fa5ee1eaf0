"""Presence and "viewing" state in Redis (ephemeral: rebuilt from events and gateway refreshes)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from notification.store.redis_keys import (
    TTL,
    conversation_viewers_key,
    presence_key,
    user_viewing_key,
)
from shared.redis.client import AnyRedis


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRealtimeState:
    """Who is online, and who is viewing which conversation."""

    def __init__(self, client: AnyRedis) -> None:
        self._client = client

    async def set_presence(self, user_id: str, *, online: bool) -> None:
        """Online sets the presence key; offline deletes it and ends any viewing."""
        if online:
            await self._client.set(presence_key(user_id), b"1", px=TTL.ttl_ms("presence"))
            return
        await self._client.delete(presence_key(user_id))
        await self.set_viewing(user_id, None)

    async def set_viewing(self, user_id: str, conversation_id: str | None) -> None:
        """Move the user's "viewing" mark (the old conversation's hash loses them)."""
        user_key = user_viewing_key(user_id)
        previous = await self._client.get(user_key)
        if previous is not None and _text(previous) != conversation_id:
            await self._client.hdel(conversation_viewers_key(_text(previous)), user_id)
        if conversation_id is None:
            await self._client.delete(user_key)
            return
        ttl_ms = TTL.ttl_ms("viewing")
        expires = int(time.time() * 1000) + ttl_ms
        viewers = conversation_viewers_key(conversation_id)
        await self._client.hset(viewers, user_id, str(expires))
        await self._client.pexpire(viewers, ttl_ms)
        await self._client.set(user_key, conversation_id.encode(), px=ttl_ms)

    async def online(self, user_ids: Sequence[str]) -> frozenset[str]:
        """Those of ``user_ids`` whose presence key exists (one pipeline: a send per node)."""
        if not user_ids:
            return frozenset()
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.exists(presence_key(user_id))
            present = await pipe.execute()
        return frozenset(u for u, p in zip(user_ids, present, strict=True) if p)

    async def viewers(self, conversation_id: str) -> frozenset[str]:
        """Users whose viewing mark is fresh: one read.

        No presence lookup: going offline ends the user's viewing (:meth:`set_presence`), and the
        gateway clears a connection's view when it closes, after any ``view`` of it on the same
        command partition; a mark nobody refreshes lapses in 90 s.
        """
        raw = await self._client.hgetall(conversation_viewers_key(conversation_id))
        now = int(time.time() * 1000)
        return frozenset(_text(u) for u, exp in raw.items() if int(exp) > now)
