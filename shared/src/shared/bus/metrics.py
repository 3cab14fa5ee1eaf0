"""Prometheus metrics of the bus, all named ``parley_bus_*``.

Counters and the latency histogram are updated as messages are handled. Lag, pending, oldest pending
age and dead-letter size are read from Redis by :meth:`BusMetrics.refresh` (the consumer calls it
periodically), per stream, partition and group.
"""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from contracts.topology import StreamSpec
from shared.bus import wire
from shared.redis.client import AnyRedis

_PART = ("stream", "partition", "group")


class BusMetrics:
    """The bus's metric families, registered in ``registry`` (the process default if omitted)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        self.handled = Counter(
            "parley_bus_handled", "Messages handled, by outcome", (*_PART, "outcome"), registry=reg
        )
        self.retries = Counter(
            "parley_bus_retries", "Handler attempts that failed", _PART, registry=reg
        )
        self.dead_lettered = Counter(
            "parley_bus_dead_lettered", "Messages sent to a dead-letter stream", _PART, registry=reg
        )
        self.handler_seconds = Histogram(
            "parley_bus_handler_seconds",
            "Handler time of one message, by stream, group and message type (a command's type is "
            "the command: the per-command latency of its service)",
            ("stream", "group", "type"),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=reg,
        )
        self.published = Counter(
            "parley_bus_published", "Entries appended", ("stream",), registry=reg
        )
        self.lag = Gauge("parley_bus_lag", "Entries not yet read by the group", _PART, registry=reg)
        self.pending = Gauge(
            "parley_bus_pending", "Entries read, not acknowledged", _PART, registry=reg
        )
        self.oldest_pending_age = Gauge(
            "parley_bus_oldest_pending_age_seconds",
            "Age of the oldest pending entry (from its id's timestamp)",
            _PART,
            registry=reg,
        )
        self.dlq_size = Gauge(
            "parley_bus_dlq_size", "Entries in the dead-letter stream", ("stream",), registry=reg
        )
        self._handler_children: dict[tuple[str, str, str], Histogram] = {}
        self.groups_recreated = Counter(
            "parley_bus_groups_recreated",
            "Consumer groups recreated after NOGROUP",
            _PART,
            registry=reg,
        )

    def observe_handler(self, stream: str, group: str, kind: str, seconds: float) -> None:
        """Record one handler's time (the labelled child is cached: no ``labels()`` per message)."""
        key = (stream, group, kind)
        child = self._handler_children.get(key)
        if child is None:
            child = self._handler_children[key] = self.handler_seconds.labels(*key)
        child.observe(seconds)

    async def refresh(self, client: AnyRedis, spec: StreamSpec, group: str) -> None:
        """Read lag, pending, oldest pending age and dead-letter size of ``group`` on ``spec``."""
        now_ms = time.time() * 1000
        for p in range(spec.partitions):
            labels = (spec.name, str(p), group)
            key = spec.key(p)
            if not await client.exists(key):
                continue
            for info in await client.xinfo_groups(key):
                if wire.as_text(info["name"]) != group:
                    continue
                self.lag.labels(*labels).set(info.get("lag") or 0)
                self.pending.labels(*labels).set(info["pending"])
                age = 0.0
                if info["pending"]:
                    summary = await client.xpending(key, group)
                    oldest = wire.as_text(summary["min"])
                    age = max(0.0, (now_ms - int(oldest.split("-")[0])) / 1000)
                self.oldest_pending_age.labels(*labels).set(age)
        self.dlq_size.labels(spec.name).set(await client.xlen(spec.dead_letter_key()))


_process_metrics: BusMetrics | None = None


def process_metrics() -> BusMetrics:
    """The process's one :class:`BusMetrics` in the default registry (what ``/metrics`` serves):
    a service passes it to its publishers and consumers."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = BusMetrics()
    return _process_metrics
