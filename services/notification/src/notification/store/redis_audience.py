"""Cache-aside of each user's audience (settings + conversation overrides + blocks).

One cached value per user, so deciding for a conversation of N members costs N cache reads
instead of three queries per member. With an invalidation bus the reads are served from an
in-process near-cache (a 100-member conversation would otherwise cost 99 Redis round trips per
message); every change is announced on the bus, so peers drop their copy at once, and the near
TTL bounds staleness if an announcement is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from notification.domain.preferences import Audience
from notification.store.protocols import AudienceLoader
from notification.store.redis_keys import KEYS, TTL
from shared.cache import Cache, InvalidationBus
from shared.redis.client import AnyRedis


class RedisAudienceCache:
    """Audiences under ``notification:cache:{audience:<user>}:g<N>``."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        bus: InvalidationBus | None = None,
        near_size: int = 50_000,
        near_ttl: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self._cache: Cache[Audience] = Cache(
            client,
            KEYS,
            "audience",
            Audience,
            rule=TTL["audience"],
            bus=bus,
            near_size=near_size if bus is not None else 0,
            near_ttl=near_ttl,
            enabled=enabled,
        )

    async def get_many(self, user_ids: Sequence[str], load: AudienceLoader) -> dict[str, Audience]:
        """Audiences of ``user_ids`` (a user never seen gets the defaults)."""

        async def one(user_id: str) -> Audience:
            found = await self._cache.get_or_load(user_id, lambda: load(user_id))
            return found if found is not None else Audience()

        values = await asyncio.gather(*(one(u) for u in user_ids))
        return dict(zip(user_ids, values, strict=True))

    async def invalidate(self, user_id: str) -> None:
        """Forget a user's cached audience."""
        await self._cache.delete(user_id)
