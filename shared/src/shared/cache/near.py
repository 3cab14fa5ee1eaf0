"""The optional in-process near-cache: a bounded LRU (``cachetools``) with per-entry expiry.

Entries are keyed by their full Redis key, which carries the namespace generation, so a
generation bump makes them unreachable at once. Each entry lives at most ``ttl`` seconds and
never past the Redis entry's own expiry; peers evict explicitly invalidated keys through the
:class:`~shared.cache.invalidation.InvalidationBus`.
"""

from __future__ import annotations

import time
from typing import Any

from cachetools import LRUCache


class NearCache:
    """A bounded, expiring map from Redis key to ``(found, value)``."""

    def __init__(self, maxsize: int, *, ttl: float = 10.0) -> None:
        # cachetools is a plain LRU with O(1) operations; expiry is checked on read rather
        # than with TLRUCache, whose per-access expiry sweep costs more on the hit path.
        self._lru: LRUCache[str, tuple[float, bool, Any]] = LRUCache(maxsize)
        self._ttl = ttl

    def get(self, key: str) -> tuple[bool, Any] | None:
        """``(found, value)`` if present and fresh, else ``None``."""
        item = self._lru.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            self._lru.pop(key, None)
            return None
        return item[1], item[2]

    def put(self, key: str, found: bool, value: Any, *, expires_at: float) -> None:
        """Remember an entry until ``expires_at`` (wall clock) or the near TTL, whichever first."""
        remaining = min(self._ttl, expires_at - time.time())
        if remaining > 0:
            self._lru[key] = (time.monotonic() + remaining, found, value)

    def evict(self, *keys: str) -> None:
        """Forget ``keys``."""
        for key in keys:
            self._lru.pop(key, None)

    def clear(self) -> None:
        """Forget everything (e.g. after invalidation messages may have been missed)."""
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)
