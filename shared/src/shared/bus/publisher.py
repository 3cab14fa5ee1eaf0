"""Appending messages to their partitioned streams, coalesced into pipelines, with safe trimming.

``publish`` picks the partition from the message's partition key (so one key's messages stay in
order), builds the envelope (inheriting correlation, causation and trace context from the message
being handled, see :mod:`shared.bus.context`) and queues the XADD. Calls made concurrently are sent
together: one cluster pipeline per flush, which redis-py splits per node and sends in parallel, so
a burst of publishes costs one round trip per node instead of one per message.

Retention (the stream's ``max_len`` / ``max_age_s``) is applied by a script at most once per
``trim_interval`` per partition, off the publish path, and never trims past an entry that some group
has not acknowledged or not yet read. The default, 30 s, is small beside any retention (hours,
or 100,000 entries and more) and keeps the script (XLEN, XRANGE, XINFO GROUPS, XPENDING, XTRIM)
off most publishes: with 16 partitions, once a second per partition was nearly once per publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from contracts import registry
from contracts.base import Envelope, Message
from contracts.topology import StreamSpec
from shared import tracing
from shared.bus import context, scripts, spans, wire
from shared.bus.metrics import BusMetrics
from shared.redis.client import AnyRedis
from shared.tracing import state as tracing_state

log = logging.getLogger(__name__)

StreamOf = Callable[[type[Message]], StreamSpec]

_TRIM_SCAN = 10_000


class Publisher:
    """Publishes typed messages for one producer (the service name goes into every envelope)."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        producer: str,
        stream_of: StreamOf = registry.stream_of,
        metrics: BusMetrics | None = None,
        trim_interval: float = 30.0,
    ) -> None:
        self._client = client
        self.producer = producer
        self._stream_of = stream_of
        self._metrics = metrics
        self.trim_interval = trim_interval
        self._queue: list[tuple[str, wire.Fields, asyncio.Future[str]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._trim = client.register_script(scripts.SAFE_TRIM)
        self._xadd_many = client.register_script(scripts.XADD_MANY)
        self._trimmed_at: dict[str, float] = {}
        self._spec_of_key: dict[str, StreamSpec] = {}
        self._background: set[asyncio.Task[int]] = set()

    def envelope_for(
        self,
        message: Message,
        *,
        deadline: datetime | None = None,
        reply_to: str | None = None,
    ) -> Envelope:
        """A new envelope for ``message``, caused by the message being handled (if any)."""
        return Envelope.for_message(
            message,
            producer=self.producer,
            caused_by=context.current(),
            deadline=deadline,
            reply_to=reply_to,
            # With tracing on, the span in progress (a request's, a handler's) is the parent.
            traceparent=tracing.current_traceparent(),
        )

    async def publish(self, message: Message, *, envelope: Envelope | None = None) -> str:
        """Append ``message`` to the partition of its key; returns the entry id.

        With tracing on, a producer span ``send <type>`` (under the envelope's trace context)
        times the append, and the entry carries that span as its ``traceparent``.
        """
        env = envelope or self.envelope_for(message)
        spec = self._stream_of(type(message))
        key = spec.key_for(message.partition_value() or env.id)
        self._spec_of_key[key] = spec
        if tracing_state.tracer is None:
            return await self.append(key, wire.entry_fields(env, message))
        with tracing.span(
            f"send {env.type}",
            kind="producer",
            traceparent=env.traceparent,
            tracestate=env.tracestate,
            attributes=spans.producer_attributes(spec.name, env),
        ) as span:
            if span is not None:
                env = msgspec.structs.replace(env, traceparent=tracing.format_traceparent(span))
            return await self.append(key, wire.entry_fields(env, message))

    def note_stream(self, key: str, spec: StreamSpec) -> None:
        """``key`` is a partition of ``spec``: :meth:`append` trims and counts it like a publish."""
        self._spec_of_key[key] = spec

    async def append(self, key: str, fields: wire.Fields) -> str:
        """Append raw entry fields to one partition key (tools use this to re-publish)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((key, fields, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush_loop())
        return await future

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                # Yield once so that every publish started in this loop iteration joins the batch.
                await asyncio.sleep(0)
                batch, self._queue = self._queue, []
                await self._send(batch)
        finally:
            self._flushing = None

    async def _send(self, batch: list[tuple[str, wire.Fields, asyncio.Future[str]]]) -> None:
        by_key: dict[str, list[tuple[wire.Fields, asyncio.Future[str]]]] = {}
        for key, fields, future in batch:
            by_key.setdefault(key, []).append((fields, future))
        # One call per partition (a script appends a partition's entries in order), all
        # partitions at once: far fewer commands to pack and parse than one XADD each.
        await asyncio.gather(*(self._send_key(key, items) for key, items in by_key.items()))
        self._maybe_trim(set(by_key))

    async def _send_key(
        self, key: str, items: list[tuple[wire.Fields, asyncio.Future[str]]]
    ) -> None:
        try:
            if len(items) == 1:
                ids: list[Any] = [await self._client.xadd(key, wire.redis_fields(items[0][0]))]
            else:
                args: list[Any] = []
                for fields, _ in items:
                    args.append(len(fields))
                    for name, value in fields.items():
                        args += (name, value)
                ids = await self._xadd_many(keys=[key], args=args)
        except Exception as e:
            for _, future in items:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), entry_id in zip(items, ids, strict=True):
            if not future.done():
                future.set_result(wire.as_text(entry_id))
        if self._metrics is not None:
            spec = self._spec_of_key.get(key)
            self._metrics.published.labels(spec.name if spec else key).inc(len(items))

    def _maybe_trim(self, keys: set[str]) -> None:
        now = time.monotonic()
        for key in keys:
            spec = self._spec_of_key.get(key)
            if spec is None or now - self._trimmed_at.get(key, 0.0) < self.trim_interval:
                continue
            self._trimmed_at[key] = now
            task = asyncio.create_task(self.trim(key, spec))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def trim(self, key: str, spec: StreamSpec) -> int:
        """Apply ``spec``'s retention to partition ``key`` safely; returns entries removed."""
        return await trim_partition(self._client, self._trim, key, spec)

    async def aclose(self) -> None:
        """Wait for queued publishes and trims to finish."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)


async def trim_partition(client: AnyRedis, script: Any, key: str, spec: StreamSpec) -> int:
    """Trim ``key`` to ``spec``'s retention without removing any unacknowledged entry."""
    min_id = ""
    if spec.max_age_s is not None:
        min_id = f"{int((time.time() - spec.max_age_s) * 1000)}-0"
    run = script if script is not None else client.register_script(scripts.SAFE_TRIM)
    try:
        removed = await run(keys=[key], args=[spec.max_len or 0, min_id, _TRIM_SCAN])
    except Exception:
        log.warning("trimming %s failed", key, exc_info=True)
        return 0
    return int(removed)
