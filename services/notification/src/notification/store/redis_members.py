"""Cache-aside of each conversation's members (the projection kept from chat's events).

Every posted message needs its conversation's members; reading them from the cache costs one
Redis round trip instead of a database transaction. The membership handlers drop the entry after
their commit. Membership events and messages of one conversation share a partition and a lane
(chat.events is partitioned by conversation), so a message is decided after the change before it
has dropped the entry; the TTL bounds a drop missed by a crash. No in-process copy: a removed
member must stop hearing of the conversation at once, on every instance.
"""

from __future__ import annotations

from notification.store.protocols import MembersLoader
from notification.store.redis_keys import KEYS, TTL
from shared.cache import Cache
from shared.redis.client import AnyRedis


class RedisMembersCache:
    """Members under ``notification:cache:{members:<conversation>}:g<N>``."""

    def __init__(self, client: AnyRedis, *, enabled: bool = True) -> None:
        self._cache: Cache[list[str]] = Cache(
            client, KEYS, "members", list[str], rule=TTL["members"], enabled=enabled
        )

    async def get(self, conversation_id: str, load: MembersLoader) -> list[str]:
        """The members of a conversation (loaded on a miss; a Redis failure reads the database)."""
        found = await self._cache.get_or_load(conversation_id, load)
        return found if found is not None else await load()

    async def invalidate(self, conversation_id: str) -> None:
        """Forget a conversation's cached members."""
        await self._cache.delete(conversation_id)
