"""Cache-aside over Redis: the :class:`Cache` object, the :func:`cached` decorator, near-cache
coherence through an :class:`InvalidationBus`, and namespace :class:`Generations`."""

from shared.cache.core import Cache, bypass_cache
from shared.cache.decorator import cached
from shared.cache.entry import Entry
from shared.cache.invalidation import Invalidation, InvalidationBus
from shared.cache.namespace import Generations
from shared.cache.near import NearCache

__all__ = [
    "Cache",
    "Entry",
    "Generations",
    "Invalidation",
    "InvalidationBus",
    "NearCache",
    "bypass_cache",
    "cached",
]
