"""A consumer group member: leases partitions, runs a worker on each, recovers lost groups.

    consumer = Consumer(client, group="notification", handlers={MessagePosted: on_posted})
    await consumer.start()
    ...
    await consumer.stop()   # stop reading, finish or return in-flight work, ack, release leases

The streams read are those of the handled message classes (from the registry). Several instances
of one service share the group; each owns about ``P / instances`` partitions of every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping

from redis.exceptions import ResponseError

from contracts import registry
from contracts.base import Envelope, Message
from contracts.topology import StreamSpec
from shared.bus import wire
from shared.bus.budget import InFlightBudget
from shared.bus.handling import Handler, Runner, handler_table
from shared.bus.leases import PartitionLeases
from shared.bus.metrics import BusMetrics
from shared.bus.partition import PartitionWorker
from shared.bus.replies import ReplySender
from shared.bus.settings import ConsumerSettings
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

StreamOf = Callable[[type[Message]], StreamSpec]


class Consumer:
    """One instance of a consumer group, over every stream its handlers read."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        group: str,
        handlers: Mapping[type[Message], Handler],
        instance_id: str | None = None,
        settings: ConsumerSettings | None = None,
        metrics: BusMetrics | None = None,
        stream_of: StreamOf = registry.stream_of,
        producer: str | None = None,
        start_id: str = "0",
    ) -> None:
        self._client = client
        self.group = group
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.settings = settings or ConsumerSettings()
        self._metrics = metrics
        self._start_id = start_id
        self._budget = InFlightBudget(self.settings.max_in_flight)
        self._replies = ReplySender(client, producer=producer or group.split(".", 1)[0])
        by_stream: dict[str, tuple[StreamSpec, dict[type[Message], Handler]]] = {}
        for cls, handler in handlers.items():
            spec = stream_of(cls)
            by_stream.setdefault(spec.name, (spec, {}))[1][cls] = handler
        self._streams = by_stream
        self._classes = {(c.TYPE, c.VERSION): c for c in handlers}
        self._workers: dict[tuple[str, int], PartitionWorker] = {}
        self._leases: list[PartitionLeases] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def owned(self) -> dict[str, set[int]]:
        """The partitions this instance holds, per stream."""
        return {lease.spec.name: set(lease.owned) for lease in self._leases}

    async def start(self) -> None:
        """Create missing groups, then start heartbeating and consuming."""
        for spec, handlers in self._streams.values():
            for p in range(spec.partitions):
                await self._ensure_group(spec, p, self._start_id)
            runner = Runner(
                self._client,
                spec,
                group=self.group,
                consumer=self.instance_id,
                handlers=handler_table(dict(handlers)),
                settings=self.settings,
                replies=self._replies,
                metrics=self._metrics,
            )
            self._leases.append(self._lease_table(spec, runner))
        for lease in self._leases:
            await lease.tick()
            self._tasks.append(asyncio.create_task(_after_first(lease)))
        if self._metrics is not None:
            self._tasks.append(asyncio.create_task(self._refresh_metrics()))

    async def stop(self) -> None:
        """Graceful shutdown: stop reading, finish or return in-flight work, ack, release leases."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a cancellation swallowed inside a client call must not hang shutdown.
            await asyncio.wait(self._tasks, timeout=self.settings.lease_ttl)
        self._tasks.clear()
        for lease in self._leases:
            with contextlib.suppress(Exception):
                await lease.release_all()
        self._leases.clear()

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _lease_table(self, spec: StreamSpec, runner: Runner) -> PartitionLeases:
        async def acquire(p: int) -> None:
            worker = PartitionWorker(
                self._client,
                spec,
                p,
                group=self.group,
                consumer=self.instance_id,
                settings=self.settings,
                budget=self._budget,
                decoder=self._decode,
                runner=runner,
                ensure_group=lambda at: self._ensure_group(spec, p, at, recreated=True),
            )
            self._workers[(spec.name, p)] = worker
            worker.start()

        async def drain(p: int) -> None:
            worker = self._workers.pop((spec.name, p), None)
            if worker is not None:
                await worker.drain()

        async def lost(p: int) -> None:
            worker = self._workers.pop((spec.name, p), None)
            if worker is not None:
                await worker.abandon()

        return PartitionLeases(
            self._client,
            spec,
            self.group,
            self.instance_id,
            ttl=self.settings.lease_ttl,
            on_acquire=acquire,
            on_drain=drain,
            on_lost=lost,
        )

    def _decode(self, fields: wire.Fields) -> tuple[Envelope, Message] | None:
        envelope = wire.decode_envelope(fields)
        cls = self._classes.get((envelope.type, envelope.version))
        if cls is None:
            return None  # another message type on this stream: not for this group
        return envelope, wire.decode_payload(cls, fields)

    async def _ensure_group(
        self, spec: StreamSpec, p: int, at: str, *, recreated: bool = False
    ) -> None:
        try:
            await self._client.xgroup_create(spec.key(p), self.group, at, mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
            return
        if recreated and self._metrics is not None:
            self._metrics.groups_recreated.labels(spec.name, str(p), self.group).inc()

    async def _refresh_metrics(self) -> None:
        assert self._metrics is not None
        while True:
            for spec, _ in self._streams.values():
                try:
                    await self._metrics.refresh(self._client, spec, self.group)
                except Exception:
                    log.debug("metrics refresh failed for %s", spec.name, exc_info=True)
            await asyncio.sleep(5.0)


async def _after_first(lease: PartitionLeases) -> None:
    await asyncio.sleep(lease.interval)
    await lease.run()
