"""Namespace generations: invalidate a whole family of cache entries in O(1).

Every cache key carries its namespace's generation (``...:g<N>``). Bumping the counter
(``INCR``) makes every older entry unreachable at once; they expire on their own TTL.

The generation is read from Redis at most once per ``max_age`` seconds per process, so the hit
path stays one round trip. A bump is seen at once by the process that made it, by peers as
soon as the invalidation message reaches them (when an :class:`InvalidationBus` is in use), and
by every process within ``max_age`` in any case.
"""

from __future__ import annotations

import time

from shared.keys import KeySpace
from shared.redis.client import AnyRedis


class Generations:
    """Generation counters of the namespaces of one service."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, *, max_age: float = 1.0) -> None:
        self._client = client
        self._keyspace = keyspace
        self._max_age = max_age
        self._known: dict[str, tuple[int, float]] = {}

    def key(self, namespace: str) -> str:
        """The counter's key. It has no TTL: losing it would resurrect old entries."""
        return self._keyspace.key("cachegen", tag=namespace)

    async def current(self, namespace: str) -> int:
        """The namespace's generation, cached in-process for at most ``max_age`` seconds."""
        known = self._known.get(namespace)
        now = time.monotonic()
        if known is not None and now - known[1] < self._max_age:
            return known[0]
        raw = await self._client.get(self.key(namespace))
        generation = int(raw) if raw is not None else 0
        self.observe(namespace, generation)
        return generation

    async def bump(self, namespace: str) -> int:
        """Start a new generation; returns it."""
        generation = int(await self._client.incr(self.key(namespace)))
        self.observe(namespace, generation)
        return generation

    def observe(self, namespace: str, generation: int) -> None:
        """Record a generation learnt elsewhere (e.g. from an invalidation message)."""
        known = self._known.get(namespace)
        if known is None or generation >= known[0]:
            self._known[namespace] = (generation, time.monotonic())
