"""Profiles through the cache: cache-aside with a near-cache for hot profiles.

Reads go near-cache -> Redis -> database (one loader per key across all instances, see
``shared.cache``). Writes go to the database first, then overwrite the Redis entry and tell every
instance's near-cache to drop its copy (``InvalidationBus``), so an update is visible everywhere
at once. Misses of one ``get_many`` call are loaded with one SQL query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from shared.cache import Cache
from shared.outbox import Staged
from user.domain.profiles import Profile
from user.store.protocols import ProfileStore


class CachedProfileStore:
    """A :class:`ProfileStore` in front of another one (the SQL store)."""

    def __init__(self, inner: ProfileStore, cache: Cache[Profile]) -> None:
        self._inner = inner
        self._cache = cache
        self._batch = _BatchLoader(inner.get_many)

    async def create(
        self, profile: Profile, *, message_id: str, events: Sequence[Staged] = ()
    ) -> bool:
        """See ProfileStore.create; also replaces a cached "not found"."""
        created = await self._inner.create(profile, message_id=message_id, events=events)
        if created:
            await self._cache.set(profile.user_id, profile)
        return created

    async def get(self, user_id: str) -> Profile | None:
        """See ProfileStore.get."""
        return await self._cache.get_or_load(user_id, lambda: self._inner.get(user_id))

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        """See ProfileStore.get_many."""
        ids = list(dict.fromkeys(user_ids))
        found = await asyncio.gather(
            *(self._cache.get_or_load(uid, self._batch.loader(uid)) for uid in ids)
        )
        return {uid: p for uid, p in zip(ids, found, strict=True) if p is not None}

    async def save(self, profile: Profile, *, events: Sequence[Staged] = ()) -> None:
        """See ProfileStore.save; the new value replaces the cached one on every instance."""
        await self._inner.save(profile, events=events)
        await self._cache.set(profile.user_id, profile)

    async def search(self, prefix: str, *, limit: int) -> list[Profile]:
        """See ProfileStore.search (not cached: prefixes are too many and too short-lived)."""
        return await self._inner.search(prefix, limit=limit)


class _BatchLoader:
    """Coalesces the single-id loads started in the same moment into one ``get_many``."""

    def __init__(self, load_many: Callable[[Sequence[str]], Awaitable[dict[str, Profile]]]):
        self._load_many = load_many
        self._pending: dict[str, list[asyncio.Future[Profile | None]]] = {}
        self._flush_task: asyncio.Task[None] | None = None

    def loader(self, user_id: str) -> Callable[[], Awaitable[Profile | None]]:
        return lambda: self.load(user_id)

    async def load(self, user_id: str) -> Profile | None:
        future: asyncio.Future[Profile | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(user_id, []).append(future)
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # A few turns of the loop let the other misses of the same call join the batch.
        for _ in range(3):
            await asyncio.sleep(0)
        pending, self._pending, self._flush_task = self._pending, {}, None
        try:
            found = await self._load_many(list(pending))
        except Exception as e:
            for futures in pending.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(e)
            return
        for uid, futures in pending.items():
            for f in futures:
                if not f.done():
                    f.set_result(found.get(uid))
