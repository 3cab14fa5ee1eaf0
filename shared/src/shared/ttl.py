"""Per-service TTL policy: one table in code says how long each kind of entry lives in Redis.

DESIGN.md §3: TTLs are declared per service in one place, not scattered as literals, and every
cache entry has a TTL with jitter (so entries written together do not expire together).

>>> TTL = TtlPolicy({"profile": TtlRule(ttl=300, jitter=0.1, negative_ttl=30)})
>>> 270 <= TTL.ttl("profile") <= 330
True
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass


class UnknownEntityError(KeyError):
    """The policy table has no rule for this entity: declare one instead of using a literal."""


@dataclass(frozen=True, slots=True)
class TtlRule:
    """How long one kind of entry lives.

    ``ttl`` and ``negative_ttl`` are seconds; ``jitter`` is the fraction (0..1) by which each
    written TTL is randomly shortened or lengthened. ``negative_ttl`` (how long "not found" is
    remembered) defaults to a tenth of ``ttl``.
    """

    ttl: float
    jitter: float = 0.1
    negative_ttl: float | None = None

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ValueError(f"ttl must be positive, got {self.ttl}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.negative_ttl is not None and self.negative_ttl <= 0:
            raise ValueError(f"negative_ttl must be positive, got {self.negative_ttl}")

    def sample(self, *, negative: bool = False) -> float:
        """A TTL in seconds with jitter applied (never below one millisecond)."""
        base = self.ttl if not negative else (self.negative_ttl or self.ttl / 10)
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(base, 0.001)

    def sample_ms(self, *, negative: bool = False) -> int:
        """:meth:`sample` in whole milliseconds, as ``SET ... PX`` wants."""
        return max(int(self.sample(negative=negative) * 1000), 1)


class TtlPolicy(Mapping[str, TtlRule]):
    """A service's table of entity -> :class:`TtlRule`; an undeclared entity is an error."""

    def __init__(self, rules: Mapping[str, TtlRule]) -> None:
        self._rules = dict(rules)

    def __getitem__(self, entity: str) -> TtlRule:
        try:
            return self._rules[entity]
        except KeyError:
            raise UnknownEntityError(f"no TTL rule for entity {entity!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def ttl(self, entity: str, *, negative: bool = False) -> float:
        """A jittered TTL in seconds for ``entity``."""
        return self[entity].sample(negative=negative)

    def ttl_ms(self, entity: str, *, negative: bool = False) -> int:
        """A jittered TTL in milliseconds for ``entity``."""
        return self[entity].sample_ms(negative=negative)
