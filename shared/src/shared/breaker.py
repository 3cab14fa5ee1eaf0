"""Circuit breakers: fail fast while a dependency is down, probe it, serve again when it is back.

One :class:`CircuitBreaker` guards one dependency: a Redis node, the cluster's slot map, a
service's database, the commands to one service. It is *closed* (calls go through) until
``failures`` failures in a row land within ``window`` seconds; then *open*: calls are refused at
once (the caller raises its typed :class:`CircuitOpenError`, carrying ``retry_after``) for
``cooldown`` seconds. After the cooldown it is *half-open*: one call goes through as a probe; its
success closes the breaker, its failure opens it for another cooldown.

The check on the fast path is an attribute read (``breaker.state is CLOSED``) and a method call;
a success while closed with no failures counted costs two comparisons. Each state change logs one
line and moves the ``parley_breaker_state`` gauge and ``parley_breaker_transitions`` counter; a
refused call logs nothing.
"""

from __future__ import annotations

import enum
import logging
import time
import weakref
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from shared.metrics import PREFIX

log = logging.getLogger(__name__)

__all__ = [
    "BreakerSettings",
    "Breakers",
    "CircuitBreaker",
    "CircuitOpenError",
    "State",
]


class State(enum.IntEnum):
    """A breaker's state; the value is what the ``parley_breaker_state`` gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


CLOSED, HALF_OPEN, OPEN = State.CLOSED, State.HALF_OPEN, State.OPEN


class BreakerSettings(BaseModel):
    """When a breaker opens and for how long. Services embed it in their settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Off: the breaker never opens (every call spends its own retry budget)."""
    failures: int = Field(default=5, ge=1, le=10_000)
    """Failures in a row (no success between them) that open the breaker..."""
    window: float = Field(default=10.0, gt=0, le=3600)
    """...when they all fall within this many seconds."""
    cooldown: float = Field(default=5.0, gt=0, le=3600)
    """Seconds an open breaker refuses calls before it lets one probe through."""


class CircuitOpenError(Exception):
    """A call refused because the breaker of the dependency it needs is open.

    Each layer raises its own subclass (a Redis one is also a ``RedisUnavailable``, a bus one a
    ``BusError``); a caller that wants to fail fast catches this root.
    """

    def __init__(self, breaker: str, retry_after: float) -> None:
        self.breaker = breaker
        self.retry_after = retry_after
        """Seconds until the breaker lets a probe through (at least a little)."""
        super().__init__(f"{breaker} is unavailable (circuit open); retry in {retry_after:.1f}s")


class CircuitBreaker:
    """The state machine of one breaker; see the module docstring. Not thread-safe: one loop."""

    __slots__ = (
        "__weakref__",
        "_clock",
        "_count",
        "_opened_at",
        "_probe_at",
        "_settings",
        "_transitions",
        "_window_start",
        "name",
        "state",
    )

    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.state = CLOSED
        """The current state: read it directly, it is the fast-path check."""
        self._settings = settings or BreakerSettings()
        self._clock = clock
        self._count = 0
        self._window_start = 0.0
        self._opened_at = 0.0
        self._probe_at = 0.0
        self._transitions = {s: TRANSITIONS.labels(name, s.name.lower()) for s in State}
        _live.breakers.add(self)

    def allow(self) -> bool:
        """Whether a call may go now: always when closed; one probe at a time once cooled down."""
        if self.state is CLOSED:
            return True
        now = self._clock()
        if self.state is OPEN:
            if now - self._opened_at < self._settings.cooldown:
                return False
            self._probe_at = now
            self._move(HALF_OPEN, "probing with one call")
            return True
        # Half-open with a probe out: a probe that never reported (cancelled) is replaced.
        if now - self._probe_at < self._settings.cooldown:
            return False
        self._probe_at = now
        return True

    def retry_after(self) -> float:
        """Seconds until a probe may go (a small floor while a probe is out or when closed)."""
        if self.state is OPEN:
            left = self._settings.cooldown - (self._clock() - self._opened_at)
            return max(left, 0.1)
        return 0.1 if self.state is CLOSED else max(self._settings.cooldown / 2, 0.1)

    def record_success(self) -> None:
        """A call succeeded: forget the failures; a probe's success closes the breaker."""
        if self._count == 0 and self.state is CLOSED:
            return
        self._count = 0
        if self.state is HALF_OPEN:
            self._move(CLOSED, "the probe succeeded, serving again")

    def record_failure(self) -> None:
        """A call failed: count it; enough in a row opens the breaker, a failed probe reopens."""
        if not self._settings.enabled:
            return
        now = self._clock()
        if self.state is HALF_OPEN:
            self._opened_at = now
            self._move(OPEN, f"the probe failed; failing fast for {self._settings.cooldown:g}s")
            return
        if self.state is OPEN:
            return
        if self._count == 0 or now - self._window_start > self._settings.window:
            self._window_start, self._count = now, 0
        self._count += 1
        if self._count >= self._settings.failures:
            self._opened_at = now
            self._move(
                OPEN,
                f"{self._count} failures in {now - self._window_start:.1f}s; "
                f"failing fast for {self._settings.cooldown:g}s",
            )

    def _move(self, state: State, why: str) -> None:
        self.state = state
        self._count = 0
        self._transitions[state].inc()
        level = logging.WARNING if state is OPEN else logging.INFO
        log.log(level, "breaker %s %s: %s", self.name, _VERBS[state], why)


_VERBS = {CLOSED: "closed", HALF_OPEN: "half-open", OPEN: "opened"}


class Breakers:
    """The breakers of one family (``redis:<node>``...), made on first use with one setting."""

    def __init__(
        self,
        family: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.family = family
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._by_name: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        """The breaker of ``name`` within the family (``<family>:<name>``)."""
        breaker = self._by_name.get(name)
        if breaker is None:
            breaker = CircuitBreaker(f"{self.family}:{name}", self.settings, clock=self._clock)
            self._by_name[name] = breaker
        return breaker

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(list(self._by_name.values()))


TRANSITIONS = Counter(
    f"{PREFIX}breaker_transitions",
    "Circuit breaker state changes, by breaker and the state entered.",
    ["breaker", "to"],
)


class _StateCollector(Collector):
    """Reads the live breakers at scrape time: a state change costs no gauge update."""

    def __init__(self) -> None:
        self.breakers: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            f"{PREFIX}breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open (the worst of a process's "
            "breakers of one name).",
            labels=["breaker"],
        )
        worst: dict[str, int] = {}
        for breaker in list(self.breakers):
            worst[breaker.name] = max(worst.get(breaker.name, 0), int(breaker.state))
        for name, state in sorted(worst.items()):
            gauge.add_metric([name], state)
        yield gauge


_live = _StateCollector()
REGISTRY.register(_live)
