"""What the cache stores under a key: the value (or its absence) and the data XFetch needs."""

from __future__ import annotations

import math
import random
import time
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Entry(msgspec.Struct, Generic[T], array_like=True, frozen=True):
    """A cached value.

    ``found`` is ``False`` for a negative entry ("the loader found nothing"). ``expires_at`` is
    the wall-clock expiry (the Redis TTL is set to match) and ``delta`` the seconds the last
    load took: XFetch refreshes early with a probability that grows as expiry nears, faster
    for entries that are slow to recompute.
    """

    found: bool
    value: T | None
    expires_at: float
    delta: float = 0.0

    def should_refresh_early(self, beta: float) -> bool:
        """XFetch (Vattani et al., VLDB 2015): ``now - delta*beta*ln(U) >= expiry``."""
        if self.delta <= 0 or beta <= 0:
            return False
        # 1 - random() is in (0, 1], so the logarithm is defined.
        gap = -self.delta * beta * math.log(1.0 - random.random())
        return time.time() + gap >= self.expires_at
