"""Conversation metadata and membership through the shared cache-aside :class:`Cache`.

Membership is read on every post, so it is cached; every membership change deletes the entry
after the database commit (the next read loads the new state once across all instances). With an
invalidation bus the entries are also kept in process (a near-cache): a post then reads no Redis
key to check membership. A change deletes the Redis entry and announces the key on the bus, so
the other instances drop their copy as the Redis entry goes (a gap in the subscription clears the
whole near-cache; ``near_ttl`` bounds a copy's life in any case).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from chat.domain.conversations import Conversation, Kind, Member, Role
from chat.store.protocols import Summary
from chat.store.sql_conversations import SqlConversations
from shared.cache import Cache, InvalidationBus
from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.ttl import TtlRule


class _CachedConversation(msgspec.Struct, frozen=True, array_like=True):
    id: str
    kind: str
    created_by: str
    created_at: datetime
    members: list[tuple[str, str]]
    title: str | None


class CachedConversations:
    """The conversation store with the conversation cache in front."""

    def __init__(
        self,
        sql: SqlConversations,
        client: AnyRedis,
        keyspace: KeySpace,
        *,
        rule: TtlRule,
        bus: InvalidationBus | None = None,
        near_size: int = 0,
        near_ttl: float = 5.0,
    ) -> None:
        self._sql = sql
        self.cache: Cache[_CachedConversation] = Cache(
            client,
            keyspace,
            "conversation",
            _CachedConversation,
            rule=rule,
            bus=bus,
            near_size=near_size if bus is not None else 0,
            near_ttl=near_ttl,
        )

    async def create(self, conv: Conversation, *, direct_pair: str | None) -> Conversation:
        """Create in the database, then forget any cached "absent" entry for the id."""
        stored = await self._sql.create(conv, direct_pair=direct_pair)
        await self.cache.delete(stored.id)
        return stored

    async def get(self, conversation_id: str) -> Conversation | None:
        """Cache-aside read of metadata and members."""

        async def load() -> _CachedConversation | None:
            conv = await self._sql.get(conversation_id)
            return None if conv is None else _cached(conv)

        found = await self.cache.get_or_load(conversation_id, load)
        return None if found is None else _conversation(found)

    async def last_seq(self, conversation_id: str) -> int:
        """Not cached: it moves with every post."""
        return await self._sql.last_seq(conversation_id)

    async def add_members(self, conversation_id: str, new: Sequence[Member]) -> None:
        """Add in the database, then invalidate."""
        await self._sql.add_members(conversation_id, new)
        await self.cache.delete(conversation_id)

    async def remove_member(
        self, conversation_id: str, user_id: str, *, new_owner: str | None = None
    ) -> None:
        """Remove in the database, then invalidate."""
        await self._sql.remove_member(conversation_id, user_id, new_owner=new_owner)
        await self.cache.delete(conversation_id)

    async def list_for(
        self, user_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[Summary], str | None]:
        """From the database (a per-user list changes with every message in any of them)."""
        return await self._sql.list_for(user_id, cursor=cursor, limit=limit)

    async def ids_for(self, user_id: str, *, limit: int) -> list[str]:
        """From the database (membership changes are rare, but a stale list would leak)."""
        return await self._sql.ids_for(user_id, limit=limit)


def _cached(conv: Conversation) -> _CachedConversation:
    return _CachedConversation(
        id=conv.id,
        kind=conv.kind.value,
        created_by=conv.created_by,
        created_at=conv.created_at,
        members=[(m.user_id, m.role.value) for m in conv.members],
        title=conv.title,
    )


def _conversation(c: _CachedConversation) -> Conversation:
    return Conversation(
        id=c.id,
        kind=Kind(c.kind),
        created_by=c.created_by,
        created_at=c.created_at,
        members=tuple(Member(u, Role(r)) for u, r in c.members),
        title=c.title,
    )
