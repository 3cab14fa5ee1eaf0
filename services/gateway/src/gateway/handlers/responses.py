"""Cached GET responses: per route TTL, scoped to the viewer, with ETags; invalidated by tags.

A cached response is the JSON body and its strong ``ETag`` (a hash of the body). Its key is a hash
of (route, viewer, path, query), so one viewer's answer is never served to another. Entries are
tagged with the entities they show (``profile:<user id>``, ``conv:<conversation id>``,
``convs:<user id>``...); the gateway's ``gateway.cache`` event consumer invalidates those tags
when the owning service reports a change, and the gateway's own writes invalidate them at once so a
client reads its own writes.

Built on :class:`shared.cache.Cache` (one namespace per route, so each route has its own TTL rule
from :data:`ROUTE_TTL`); tags are service-wide, so one ``invalidate`` reaches every route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable

import msgspec

from shared.cache import Cache
from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.ttl import TtlPolicy, TtlRule

ROUTE_TTL = TtlPolicy(
    {
        "me": TtlRule(ttl=60, jitter=0.1),
        "user": TtlRule(ttl=60, jitter=0.1),
        "users": TtlRule(ttl=30, jitter=0.1),
        "preferences": TtlRule(ttl=120, jitter=0.1),
        "contacts": TtlRule(ttl=60, jitter=0.1),
        "blocks": TtlRule(ttl=60, jitter=0.1),
        "presence": TtlRule(ttl=5, jitter=0.1),
        "conversations": TtlRule(ttl=15, jitter=0.1),
        "conversation": TtlRule(ttl=15, jitter=0.1),
        "messages": TtlRule(ttl=30, jitter=0.1),
        "notification-preferences": TtlRule(ttl=120, jitter=0.1),
    }
)
"""TTL of each cacheable route's responses (events invalidate sooner)."""


class CachedResponse(msgspec.Struct, frozen=True, array_like=True):
    """A response body and its ETag."""

    body: bytes
    etag: str


def etag_of(body: bytes) -> str:
    """The strong ETag of a body: a quoted, truncated SHA-256."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or ``*``); weak tags compare too."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        value = candidate.strip()
        if value == "*" or value.removeprefix("W/") == etag:
            return True
    return False


def cache_key(route: str, viewer: str, path: str, query: str) -> str:
    """The cache key of one viewer's request: a hash, so no client text reaches a Redis key."""
    canonical = "&".join(sorted(query.split("&"))) if query else ""
    raw = "\x1f".join((route, viewer, path, canonical)).encode()
    return hashlib.sha256(raw).hexdigest()[:40]


Loader = Callable[[list[str]], Awaitable[bytes]]
"""``async def load(tags) -> body``: produces the JSON body and appends the tags it shows."""


class ResponseCache:
    """Viewer-scoped response cache over :class:`shared.cache.Cache`."""

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        *,
        enabled: bool = True,
        ttl: TtlPolicy = ROUTE_TTL,
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self.enabled = enabled
        self._ttl = ttl
        self._caches: dict[str, Cache[CachedResponse]] = {}

    def _cache(self, route: str) -> Cache[CachedResponse]:
        cache = self._caches.get(route)
        if cache is None:
            cache = Cache(
                self._client,
                self._keyspace,
                f"resp-{route}",
                CachedResponse,
                rule=self._ttl[route],
                enabled=self.enabled,
            )
            self._caches[route] = cache
        return cache

    async def get_or_load(
        self, route: str, *, viewer: str, path: str, query: str, load: Loader
    ) -> CachedResponse:
        """The cached response of this viewer's request, loading (once) on a miss."""
        tags: list[str] = []

        async def loader() -> CachedResponse:
            body = await load(tags)
            return CachedResponse(body=body, etag=etag_of(body))

        key = cache_key(route, viewer, path, query)
        value = await self._cache(route).get_or_load(key, loader, tags=tags)
        if value is None:  # only a loader returning None caches absence; ours never does
            return await loader()
        return value

    async def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every cached response tagged with any of ``tags``; how many were dropped.

        Also with this instance's cache off: the gateways share one group for invalidations, so
        the event may reach this instance while another one's entries wait for it."""
        any_cache = self._cache("me")
        total = 0
        for tag in set(tags):
            total += await any_cache.invalidate_tag(tag)
        return total
