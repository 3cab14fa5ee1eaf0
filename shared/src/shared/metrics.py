"""Prometheus metrics of the Redis client, and the naming convention all of ``shared`` follows.

Every metric of the fleet is named ``parley_<part>_<what>_<unit>``: this module holds the client's
(``parley_redis_*``); the cache, locks, rate limits and pub/sub define theirs next to their code
with the same prefix. Metrics live in prometheus_client's default registry, which a service's
``/metrics`` endpoint exposes.

Hot-path cost is kept to a dictionary lookup and one ``observe``: labelled children are cached
here instead of calling ``labels()`` per command. Pool gauges cost nothing per command: they are
read from the live clients when Prometheus scrapes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

PREFIX = "parley_"
"""Every Parley metric name starts with this."""

# Redis answers in tens of microseconds on loopback and in milliseconds across a network; the
# buckets cover both, up to the seconds a failover retry can take.
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

COMMAND_DURATION = Histogram(
    f"{PREFIX}redis_command_duration_seconds",
    "Time of one Redis command as the caller sees it, retries and pool waits included.",
    ["command"],
    buckets=_LATENCY_BUCKETS,
)
COMMAND_ERRORS = Counter(
    f"{PREFIX}redis_command_errors",
    "Commands that raised to the caller, by command and error type.",
    ["command", "error"],
)
RETRIES = Counter(
    f"{PREFIX}redis_retries",
    "Retries of a command after a transient failure, by reason.",
    ["reason"],
)
REDIRECTIONS = Counter(
    f"{PREFIX}redis_redirections",
    "MOVED and ASK replies the cluster client followed.",
    ["kind"],
)
POOL_WAITS = Counter(
    f"{PREFIX}redis_pool_waits",
    "Commands that found the node's pool full and waited for a free connection.",
)
POOL_WAIT_TIMEOUTS = Counter(
    f"{PREFIX}redis_pool_wait_timeouts",
    "Commands that gave up waiting for a free connection (raised PoolExhausted).",
)

_durations: dict[str, Histogram] = {}
_retries = {reason: RETRIES.labels(reason) for reason in ("connection", "timeout", "clusterdown")}


def observe_command(command: str, seconds: float) -> None:
    """Record the duration of one command (cached child: no ``labels()`` call per command)."""
    child = _durations.get(command)
    if child is None:
        child = _durations[command] = COMMAND_DURATION.labels(command)
    child.observe(seconds)


def count_retry(reason: str) -> None:
    """Count one retry for ``reason`` (connection, timeout, clusterdown, tryagain, ...)."""
    child = _retries.get(reason)
    if child is None:
        child = _retries[reason] = RETRIES.labels(reason)
    child.inc()


def count_error(command: str, error: BaseException) -> None:
    """Count one command that raised ``error`` to its caller."""
    COMMAND_ERRORS.labels(command, type(error).__name__).inc()


class PoolStats(Protocol):
    """A client that can say, per node, how many connections it has open and in use."""

    def pool_stats(self) -> Iterable[tuple[str, int, int]]:
        """``(node, open, in_use)`` for each node the client has a pool for."""
        ...


class _PoolCollector(Collector):
    """Reads the pools of the live clients at scrape time, so commands pay nothing for gauges."""

    def __init__(self) -> None:
        self.clients: weakref.WeakSet[PoolStats] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            f"{PREFIX}redis_pool_connections_in_use",
            "Connections currently lent to a command, per node.",
            labels=["node"],
        )
        opened = GaugeMetricFamily(
            f"{PREFIX}redis_pool_connections_open",
            "Connections in the pool (in use or idle), per node.",
            labels=["node"],
        )
        totals: dict[str, tuple[int, int]] = {}
        for client in list(self.clients):
            for node, open_count, used in client.pool_stats():
                was_open, was_used = totals.get(node, (0, 0))
                totals[node] = (was_open + open_count, was_used + used)
        for node, (open_count, used) in sorted(totals.items()):
            opened.add_metric([node], open_count)
            in_use.add_metric([node], used)
        yield in_use
        yield opened


_pools = _PoolCollector()
REGISTRY.register(_pools)


def track_pools(client: PoolStats) -> None:
    """Report ``client``'s pools in the pool gauges for as long as it lives."""
    _pools.clients.add(client)


def forget_pools(client: PoolStats) -> None:
    """Stop reporting ``client``'s pools (it was closed)."""
    _pools.clients.discard(client)
