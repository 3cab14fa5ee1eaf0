"""Cache-aside over Redis: the :class:`Cache` object (the decorator is built on it).

A read is one ``GET`` on a hit. On a miss, one loader runs per key across all processes: a
short Redis lock (``SET NX PX``) in the entry's slot elects the loader, the others poll for the
value it writes (and take over if the lock is released or expires without a value). Within one
process, concurrent misses on a key share a single attempt. Before expiry, XFetch refreshes an
entry early in the background with a probability that rises as expiry nears.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from redis.exceptions import RedisError

from shared import tracing
from shared.cache import metrics
from shared.cache.entry import Entry
from shared.cache.invalidation import Invalidation, InvalidationBus
from shared.cache.namespace import Generations
from shared.cache.near import NearCache
from shared.codec import Codec, CodecError
from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.tracing import state as tracing_state
from shared.ttl import TtlRule

log = logging.getLogger(__name__)
_FROM_LOADER = "_parley_raised_by_loader"

T = TypeVar("T")

_bypass: contextvars.ContextVar[bool] = contextvars.ContextVar("cache_bypass", default=False)

# Store the entry and release our lock in one round trip (both keys share the entry's slot).
_STORE_AND_UNLOCK = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"


@contextlib.contextmanager
def bypass_cache() -> Iterator[None]:
    """Within this block (this task and those it starts), caches call their loaders directly."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


class Cache(Generic[T]):
    """Values of one type in one namespace of a service's key space.

    >>> profiles = Cache(client, KeySpace("user"), "profile", Profile, rule=TTL["profile"])
    >>> await profiles.get_or_load("42", lambda: db.load_profile("42"), tags=["user:42"])

    A loader returning ``None`` means "absent": that is cached too, for ``rule.negative_ttl``.
    ``near_size`` > 0 adds an in-process near-cache, which needs ``bus`` for coherence.
    ``enabled=False`` (or :func:`bypass_cache`) sends every call straight to the loader.
    ``stampede_lock=False`` skips the lock that elects one loader across processes (two round
    trips a miss) for values cheaper to load than that: concurrent misses in several processes
    then each load, while those of one process still share one load.
    """

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        namespace: str,
        type_: type[T],
        *,
        rule: TtlRule,
        generations: Generations | None = None,
        bus: InvalidationBus | None = None,
        near_size: int = 0,
        near_ttl: float = 10.0,
        enabled: bool = True,
        beta: float = 1.0,
        lock_ttl: float = 5.0,
        wait_timeout: float = 5.0,
        codec: Codec[Any] | None = None,
        stampede_lock: bool = True,
    ) -> None:
        if near_size and bus is None:
            raise ValueError("a near-cache needs an InvalidationBus to stay coherent")
        self.client = client
        self.keyspace = keyspace
        self.namespace = namespace
        self.rule = rule
        self.enabled = enabled
        self.beta = beta
        self._lock_ms = int(lock_ttl * 1000)
        self._stampede_lock = stampede_lock
        self._wait_timeout = wait_timeout
        self._codec: Codec[Entry[T]] = codec or Codec(Entry[type_])  # type: ignore[valid-type]
        self._generations = generations or Generations(client, keyspace)
        self._bus = bus
        self._key_head = keyspace.key("cache", tag=f"{namespace}:_")[: -len("_}")]
        self._near = NearCache(near_size, ttl=near_ttl) if near_size else None
        self._inflight: dict[str, asyncio.Task[T | None]] = {}
        self._refreshing: set[str] = set()
        self._store_script = client.register_script(_STORE_AND_UNLOCK)
        self._unlock_script = client.register_script(_UNLOCK)
        labels = (keyspace.prefix, namespace)
        self._hits = metrics.HITS.labels(*labels)
        self._near_hits = metrics.NEAR_HITS.labels(*labels)
        self._misses = metrics.MISSES.labels(*labels)
        self._corrupt = metrics.CORRUPT.labels(*labels)
        self._unavailable = metrics.UNAVAILABLE.labels(*labels)
        self._failing = False  # logged once when Redis starts failing, once when it answers again
        self._loads = metrics.LOADS.labels(*labels)
        self._early = metrics.EARLY_REFRESHES.labels(*labels)
        self._lock_waits = metrics.LOCK_WAITS.labels(*labels)
        self._span_attributes = {
            "db.system.name": "redis",
            "parley.cache.prefix": keyspace.prefix,
            "parley.cache.namespace": namespace,
        }
        if bus is not None:
            bus.listen(self._on_invalidation)

    # -- keys ---------------------------------------------------------------------------------

    def key(self, key: str, generation: int) -> str:
        """The Redis key of cache key ``key`` in ``generation`` of the namespace.

        Equal to ``keyspace.key("cache", tag=f"{namespace}:{key}", rest=f"g{generation}")``;
        built from a prefix validated once, since this runs on every hit.
        """
        if not key or "{" in key or "}" in key:
            # The slow path raises the key grammar's own error.
            return self.keyspace.key("cache", tag=f"{self.namespace}:{key}", rest="g")
        return f"{self._key_head}{key}}}:g{generation}"

    def tag_key(self, tag: str) -> str:
        """The set of entry keys carrying ``tag`` (service-wide: tags cross namespaces)."""
        return self.keyspace.key("cachetag", tag=tag)

    # -- reads --------------------------------------------------------------------------------

    async def get_or_load(
        self, key: str, loader: Callable[[], Awaitable[T | None]], *, tags: Iterable[str] = ()
    ) -> T | None:
        """The cached value of ``key``, loading (once across processes) on a miss.

        The cache fails open: when Redis itself fails, the caller gets the loader's value (counted
        in ``parley_cache_unavailable_total``; one log line when the failures start, one when
        they stop); errors of the loader reach the caller unchanged.
        """
        if not self.enabled or _bypass.get():
            return await loader()
        try:
            value = await self._get_or_load(key, loader, tags)
        except RedisError as e:
            if getattr(e, _FROM_LOADER, False):
                raise
            self._redis_failed(e)
            return await loader()
        if self._failing:
            self._failing = False
            log.info("cache %s: Redis answers again, caching resumes", self.namespace)
        return value

    def _redis_failed(self, error: RedisError) -> None:
        self._unavailable.inc()
        if not self._failing:
            self._failing = True
            log.warning(
                "cache %s: Redis unavailable, serving from the source until it answers: %s",
                self.namespace,
                error,
            )

    async def _get_or_load(
        self, key: str, loader: Callable[[], Awaitable[T | None]], tags: Iterable[str]
    ) -> T | None:
        generation = await self._generations.current(self.namespace)
        rkey = self.key(key, generation)
        if self._near is not None and (near := self._near.get(rkey)) is not None:
            self._near_hits.inc()
            return near[1] if near[0] else None
        entry = await self._read(rkey)
        if entry is None:
            self._misses.inc()
            return await self._load_once(key, rkey, loader, tags)
        self._hits.inc()
        if entry.should_refresh_early(self.beta) and rkey not in self._refreshing:
            self._refreshing.add(rkey)
            task = asyncio.create_task(self._refresh(rkey, loader, tags))
            task.add_done_callback(lambda _: self._refreshing.discard(rkey))
        if self._near is not None:
            self._near.put(rkey, entry.found, entry.value, expires_at=entry.expires_at)
        return entry.value if entry.found else None

    async def _read(self, rkey: str) -> Entry[T] | None:
        if tracing_state.tracer is None:
            raw = await self.client.get(rkey)
        else:
            with tracing.span(
                "cache get", kind="client", child_only=True, attributes=self._span_attributes
            ) as span:
                raw = await self.client.get(rkey)
                if span is not None:
                    span.set_attribute("parley.cache.hit", raw is not None)
        if raw is None:
            return None
        try:
            return self._codec.decode(raw)
        except CodecError:
            self._corrupt.inc()  # foreign or corrupt: a miss, and the reload overwrites it
            return None

    async def _load_once(
        self, key: str, rkey: str, loader: Callable[[], Awaitable[T | None]], tags: Iterable[str]
    ) -> T | None:
        task = self._inflight.get(rkey)
        if task is None:
            load = (
                self._load_across_processes(rkey, loader, tags)
                if self._stampede_lock
                else self._load_and_store(rkey, loader, tags, lock=None, token="")
            )
            task = asyncio.ensure_future(load)
            self._inflight[rkey] = task
            task.add_done_callback(self._forget_inflight(rkey))
        # shield: a cancelled caller must not cancel the load the other waiters share.
        return await asyncio.shield(task)

    def _forget_inflight(self, rkey: str) -> Callable[[asyncio.Task[T | None]], None]:
        def done(task: asyncio.Task[T | None]) -> None:
            self._inflight.pop(rkey, None)
            if not task.cancelled():
                task.exception()  # retrieved even if every waiter was cancelled

        return done

    async def _load_across_processes(
        self, rkey: str, loader: Callable[[], Awaitable[T | None]], tags: Iterable[str]
    ) -> T | None:
        lock = f"{rkey}:lock"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self._wait_timeout
        pause = 0.005
        waited = False
        while time.monotonic() < deadline:
            if await self.client.set(lock, token, nx=True, px=self._lock_ms):
                # Another process may have stored the value and released the lock between our
                # miss and our SET NX: look once more before loading.
                entry = await self._read(rkey)
                if entry is not None:
                    await self._unlock_script(keys=[lock], args=[token])
                    return entry.value if entry.found else None
                return await self._load_and_store(rkey, loader, tags, lock=lock, token=token)
            if not waited:
                waited = True
                self._lock_waits.inc()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
            entry = await self._read(rkey)
            if entry is not None:
                return entry.value if entry.found else None
        # The elected loader is stuck: serve this caller rather than fail it.
        return await self._load_and_store(rkey, loader, tags, lock=None, token=token)

    async def _refresh(
        self, rkey: str, loader: Callable[[], Awaitable[T | None]], tags: Iterable[str]
    ) -> None:
        lock, token = f"{rkey}:lock", secrets.token_hex(8)
        with contextlib.suppress(Exception):  # a failed early refresh leaves the entry as is
            if await self.client.set(lock, token, nx=True, px=self._lock_ms):
                self._early.inc()
                await self._load_and_store(rkey, loader, tags, lock=lock, token=token)

    async def _load_and_store(
        self,
        rkey: str,
        loader: Callable[[], Awaitable[T | None]],
        tags: Iterable[str],
        *,
        lock: str | None,
        token: str,
    ) -> T | None:
        self._loads.inc()
        started = time.monotonic()
        try:
            value = await loader()
        except BaseException as e:
            with contextlib.suppress(AttributeError):
                setattr(e, _FROM_LOADER, True)  # so a loader's own RedisError is not swallowed
            if lock is not None:
                with contextlib.suppress(RedisError):
                    await self._unlock_script(keys=[lock], args=[token])
            raise
        delta = time.monotonic() - started
        try:
            await self._store(rkey, value, tags, delta=delta, lock=lock, token=token)
        except RedisError as e:
            # The value is good; only caching it failed. The next read loads again.
            self._redis_failed(e)
        return value

    # -- writes and invalidation --------------------------------------------------------------

    async def _store(
        self,
        rkey: str,
        value: T | None,
        tags: Iterable[str],
        *,
        delta: float,
        lock: str | None = None,
        token: str = "",
    ) -> None:
        negative = value is None
        ttl_ms = self.rule.sample_ms(negative=negative)
        entry = Entry(not negative, value, time.time() + ttl_ms / 1000, delta)
        data = self._codec.encode(entry)
        with tracing.span(
            "cache set", kind="client", child_only=True, attributes=self._span_attributes
        ):
            if lock is None:
                await self.client.set(rkey, data, px=ttl_ms)
            else:
                await self._store_script(keys=[rkey, lock], args=[data, ttl_ms, token])
            await self._tag(rkey, tags, ttl_ms)
        if self._near is not None:
            self._near.put(rkey, entry.found, value, expires_at=entry.expires_at)

    async def _tag(self, rkey: str, tags: Iterable[str], ttl_ms: int) -> None:
        tag_keys = [self.tag_key(t) for t in tags]
        if not tag_keys:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for tkey in tag_keys:
                pipe.sadd(tkey, rkey)
                # The set lives as long as its longest-lived member: NX sets, GT only extends.
                pipe.pexpire(tkey, ttl_ms, nx=True)
                pipe.pexpire(tkey, ttl_ms, gt=True)
            await pipe.execute()

    async def set(self, key: str, value: T | None, *, tags: Iterable[str] = ()) -> None:
        """Write ``value`` (``None``: a negative entry) and tell the peers' near-caches."""
        rkey = self.key(key, await self._generations.current(self.namespace))
        await self._store(rkey, value, tags, delta=0.0)
        await self._announce([rkey])

    async def delete(self, key: str) -> None:
        """Invalidate one key."""
        rkey = self.key(key, await self._generations.current(self.namespace))
        await self.client.delete(rkey)
        await self._evict_and_announce([rkey])

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every entry tagged ``tag``; returns how many were deleted."""
        tkey = self.tag_key(tag)
        raw_members = await self.client.smembers(tkey)
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in raw_members]
        if not members:
            return 0  # nothing cached under the tag (the common case): one round trip
        deleted = int(await self.client.delete(*members))
        await self.client.delete(tkey)
        await self._evict_and_announce(members)
        return deleted

    async def invalidate_namespace(self) -> int:
        """Invalidate the whole namespace in O(1); returns the new generation."""
        generation = await self._generations.bump(self.namespace)
        if self._bus is not None:
            await self._bus.publish(self.namespace, keys=[], generation=generation)
        return generation

    async def _evict_and_announce(self, rkeys: list[str]) -> None:
        if self._near is not None:
            self._near.evict(*rkeys)  # the bus also tells this process's other caches
        await self._announce(rkeys)

    async def _announce(self, rkeys: list[str]) -> None:
        if self._bus is not None and rkeys:
            await self._bus.publish(self.namespace, keys=rkeys, generation=None)

    def _on_invalidation(self, message: Invalidation | None) -> None:
        if message is None:
            if self._near is not None:
                self._near.clear()
            return
        if message.generation is not None and message.namespace == self.namespace:
            self._generations.observe(self.namespace, message.generation)
        if self._near is not None:
            self._near.evict(*message.keys)
