"""Users' grants, cached aside under ``auth:cache:{permissions:<user id>}`` (shared.cache)."""

from __future__ import annotations

from auth.domain.permissions import Grants
from auth.store.protocols import GrantsLoader
from auth.store.ttl import TTL
from shared.cache import Cache
from shared.keys import KeySpace
from shared.redis.client import AnyRedis


class RedisPermissionCache:
    """Cache-aside of grants; a role change calls :meth:`forget`."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, *, enabled: bool = True) -> None:
        self._cache: Cache[Grants] = Cache(
            client, keyspace, "permissions", Grants, rule=TTL["permissions"], enabled=enabled
        )

    async def grants(self, user_id: str, load: GrantsLoader) -> Grants | None:
        """The grants of ``user_id``, loaded once across processes on a miss."""
        return await self._cache.get_or_load(user_id, load)

    async def forget(self, user_id: str) -> None:
        """Drop the cached grants of ``user_id``."""
        await self._cache.delete(user_id)
