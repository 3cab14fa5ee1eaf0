"""Preferences through the cache (cache-aside; a save overwrites the entry)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.cache import Cache
from shared.outbox import Staged
from user.domain.preferences import Preferences
from user.store.protocols import PreferenceStore


class CachedPreferenceStore:
    """A :class:`PreferenceStore` in front of another one; "never set" is cached too."""

    def __init__(self, inner: PreferenceStore, cache: Cache[Preferences]) -> None:
        self._inner = inner
        self._cache = cache

    async def get(self, user_id: str) -> Preferences | None:
        """See PreferenceStore.get."""
        return await self._cache.get_or_load(user_id, lambda: self._inner.get(user_id))

    async def save(
        self,
        user_id: str,
        preferences: Preferences,
        *,
        at: datetime,
        events: Sequence[Staged] = (),
    ) -> None:
        """See PreferenceStore.save."""
        await self._inner.save(user_id, preferences, at=at, events=events)
        await self._cache.set(user_id, preferences)
