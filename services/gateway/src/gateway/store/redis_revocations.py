"""Revoked sessions in Redis, so that a (re)started gateway knows recent revocations.

One sorted set ``gateway:revoked:{sessions}``: member = session id, score = Unix time until which
its tokens must be refused. Revocations are few (only those of the last token lifetime are kept),
so one key suffices; expired members are pruned on every write and the key's own TTL follows the
latest member, so it disappears when nothing is remembered.
"""

from __future__ import annotations

import math
import time
from typing import Any

from shared.keys import KeySpace
from shared.redis.client import AnyRedis


class RedisRevokedSessions:
    """:class:`gateway.store.protocols.RevokedSessions` on Redis."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace) -> None:
        self._client = client
        self.key = keyspace.key("revoked", tag="sessions")

    async def add(self, session_id: str, *, until: float) -> None:
        """ZADD (GT: a later revocation never shortens an entry), prune, extend the key TTL."""
        now = time.time()
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {session_id: until}, gt=True)
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.expireat(self.key, math.ceil(until), gt=True)
            pipe.expireat(self.key, math.ceil(until), nx=True)
            await pipe.execute()

    async def load(self) -> dict[str, float]:
        """Members whose ``until`` is still ahead."""
        rows: list[Any] = await self._client.zrangebyscore(
            self.key, time.time(), "+inf", withscores=True
        )
        found: dict[str, float] = {}
        for member, score in rows:
            found[member.decode() if isinstance(member, bytes) else str(member)] = float(score)
        return found
