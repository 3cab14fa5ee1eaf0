"""Cache-aside of each conversation's members (the projection kept from chat's events).

Every posted message needs its conversation's members; reading them from the cache costs one
Redis round trip instead of a database transaction. The membership handlers drop the entry after
their commit. Membership events and messages of one conversation share a partition and a lane
(chat.events is partitioned by conversation), so a message is decided after the change before it
has dropped the entry; the TTL bounds a drop missed by a crash.

With an invalidation bus the members are also kept in process (a near-cache), so a message reads
no Redis key for them. That keeps the guarantee above: the instance that handles a membership
change is the one that handles the conversation's next messages (same partition, same lane),
and the drop evicts its own copy before the handler returns; every other instance drops its copy
when the bus announces the key (a gap in the subscription clears the whole near-cache), well
before a partition can move to it (a lease outlives the announcement by seconds).
"""

from __future__ import annotations

from notification.store.protocols import MembersLoader
from notification.store.redis_keys import KEYS, TTL
from shared.cache import Cache, InvalidationBus
from shared.redis.client import AnyRedis


class RedisMembersCache:
    """Members under ``notification:cache:{members:<conversation>}:g<N>``."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        bus: InvalidationBus | None = None,
        near_size: int = 50_000,
        near_ttl: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self._cache: Cache[list[str]] = Cache(
            client,
            KEYS,
            "members",
            list[str],
            rule=TTL["members"],
            bus=bus,
            near_size=near_size if bus is not None else 0,
            near_ttl=near_ttl,
            enabled=enabled,
        )

    async def get(self, conversation_id: str, load: MembersLoader) -> list[str]:
        """The members of a conversation (loaded on a miss; a Redis failure reads the database)."""
        found = await self._cache.get_or_load(conversation_id, load)
        return found if found is not None else await load()

    async def invalidate(self, conversation_id: str) -> None:
        """Forget a conversation's cached members."""
        await self._cache.delete(conversation_id)
