"""Prometheus metrics of the cache, labelled by service prefix and namespace."""

from __future__ import annotations

from prometheus_client import Counter

_LABELS = ("prefix", "namespace")

HITS = Counter("parley_cache_hits_total", "Cache reads served from Redis", _LABELS)
NEAR_HITS = Counter(
    "parley_cache_near_hits_total", "Cache reads served from the in-process near-cache", _LABELS
)
MISSES = Counter("parley_cache_misses_total", "Cache reads that found no usable entry", _LABELS)
CORRUPT = Counter(
    "parley_cache_corrupt_total", "Cached values that failed to decode (read as misses)", _LABELS
)
UNAVAILABLE = Counter(
    "parley_cache_unavailable_total",
    "Reads served by the loader because Redis failed (the cache fails open)",
    _LABELS,
)
LOADS = Counter("parley_cache_loads_total", "Loader calls made by the cache", _LABELS)
EARLY_REFRESHES = Counter(
    "parley_cache_early_refreshes_total", "Entries reloaded before expiry (XFetch)", _LABELS
)
LOCK_WAITS = Counter(
    "parley_cache_lock_waits_total", "Misses that waited for another process's loader", _LABELS
)
