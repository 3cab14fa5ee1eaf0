"""Contacts, watchers and blocks through the cache (cache-aside; every change deletes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.cache import Cache
from shared.outbox import Staged
from user.store.protocols import RelationshipStore

_Loader = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class IdList:
    """A cached list of user ids."""

    ids: list[str]


@dataclass(frozen=True, slots=True)
class RelationshipCaches:
    """The relationship namespaces."""

    contacts: Cache[IdList]
    watchers: Cache[IdList]
    blocks: Cache[IdList]
    blocked_by: Cache[IdList]


class CachedRelationshipStore:
    """A :class:`RelationshipStore` in front of another one (the SQL store)."""

    def __init__(self, inner: RelationshipStore, caches: RelationshipCaches) -> None:
        self._inner = inner
        self._caches = caches

    async def add_contact(
        self, user_id: str, contact_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.add_contact."""
        changed = await self._inner.add_contact(user_id, contact_id, at=at, events=events)
        if changed:
            await self._contacts_changed(user_id, contact_id)
        return changed

    async def remove_contact(
        self, user_id: str, contact_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.remove_contact."""
        changed = await self._inner.remove_contact(user_id, contact_id, events=events)
        if changed:
            await self._contacts_changed(user_id, contact_id)
        return changed

    async def contacts(self, user_id: str) -> list[str]:
        """See RelationshipStore.contacts."""
        return await self._list(self._caches.contacts, user_id, self._inner.contacts)

    async def watchers(self, user_id: str) -> list[str]:
        """See RelationshipStore.watchers."""
        return await self._list(self._caches.watchers, user_id, self._inner.watchers)

    async def block(
        self, user_id: str, blocked_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.block."""
        changed = await self._inner.block(user_id, blocked_id, at=at, events=events)
        if changed:
            await self._blocks_changed(user_id, blocked_id)
        return changed

    async def unblock(
        self, user_id: str, blocked_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.unblock."""
        changed = await self._inner.unblock(user_id, blocked_id, events=events)
        if changed:
            await self._blocks_changed(user_id, blocked_id)
        return changed

    async def blocks(self, user_id: str) -> list[str]:
        """See RelationshipStore.blocks."""
        return await self._list(self._caches.blocks, user_id, self._inner.blocks)

    async def blocked_by(self, user_id: str) -> list[str]:
        """See RelationshipStore.blocked_by."""
        return await self._list(self._caches.blocked_by, user_id, self._inner.blocked_by)

    async def _blocks_changed(self, user_id: str, blocked_id: str) -> None:
        await self._caches.blocks.delete(user_id)
        await self._caches.blocked_by.delete(blocked_id)

    async def _contacts_changed(self, user_id: str, contact_id: str) -> None:
        await self._caches.contacts.delete(user_id)
        await self._caches.watchers.delete(contact_id)

    @staticmethod
    async def _list(cache: Cache[IdList], user_id: str, load: _Loader) -> list[str]:
        async def loader() -> IdList:
            return IdList(await load(user_id))

        found = await cache.get_or_load(user_id, loader)
        return [] if found is None else list(found.ids)
