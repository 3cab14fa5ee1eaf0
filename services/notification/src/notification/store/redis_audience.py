"""Cache-aside of each user's audience (settings + conversation overrides + blocks).

One cached value per user, so deciding for a conversation of N members costs N cache reads
instead of three queries per member. With an invalidation bus the reads are served from an
in-process near-cache (a 100-member conversation would otherwise cost 99 Redis round trips per
message); every change is announced on the bus, so peers drop their copy at once, and the near
TTL bounds staleness if an announcement is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

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
        concurrency: int = 32,
    ) -> None:
        self._concurrency = concurrency
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
        """Audiences of ``user_ids`` (a user never seen gets the defaults).

        At most ``concurrency`` reads at a time: a 1,000-member group would otherwise ask the
        connection pool for 1,000 connections at once, time out and fall back to the database
        for every member. The misses of one call are loaded together (:class:`_Batch`), so a
        cold group costs a few set-based queries instead of a transaction per member.
        """
        batch = _Batch(load)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(user_id: str) -> Audience:
            async with gate:
                with batch.reading():
                    found = await self._cache.get_or_load(user_id, lambda: batch.load(user_id))
            return found if found is not None else Audience()

        values = await asyncio.gather(*(one(u) for u in user_ids))
        return dict(zip(user_ids, values, strict=True))

    async def invalidate(self, user_id: str) -> None:
        """Forget a user's cached audience."""
        await self._cache.delete(user_id)


class _Batch:
    """Collects the users whose audience missed the cache and loads them with one call of the
    loader, as soon as every reader still working (:meth:`reading`) waits for a load, or
    ``linger`` seconds after the first miss (a reader may wait on another process's load)."""

    def __init__(self, load: AudienceLoader, *, linger: float = 0.05) -> None:
        self._load = load
        self._linger = linger
        self._pending: dict[str, asyncio.Future[Audience]] = {}
        self._readers = 0
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around one reader's cache read: a batch waits for the readers still reading."""
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            self._flush_if_all_wait()

    async def load(self, user_id: str) -> Audience:
        """The audience of ``user_id``, from the next batch load."""
        loop = asyncio.get_running_loop()
        future = self._pending.get(user_id)
        if future is None:
            future = self._pending[user_id] = loop.create_future()
        if self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        self._waiting += 1
        try:
            self._flush_if_all_wait()
            return await future
        finally:
            self._waiting -= 1

    def _flush_if_all_wait(self) -> None:
        if self._pending and self._waiting >= self._readers:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        if pending:
            task = asyncio.ensure_future(self._load(list(pending)))
            task.add_done_callback(lambda done: _settle(done, pending))


def _settle(
    done: asyncio.Future[dict[str, Audience]], pending: dict[str, asyncio.Future[Audience]]
) -> None:
    error = done.exception() if not done.cancelled() else asyncio.CancelledError()
    for user_id, future in pending.items():
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result().get(user_id, Audience()))
