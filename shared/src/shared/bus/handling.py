"""Running one message through its handler: retries with backoff, dead letters, command replies.

A failing handler is retried in place, holding its key's lane, so later messages of the same key
wait (per-key order) while other keys go on. Each failed attempt is recorded in the entry's delivery
count (XCLAIM RETRYCOUNT), so attempts survive a crash. After ``max_deliveries`` attempts, or at
once for :class:`~shared.bus.errors.PermanentError`, the message goes to ``<stream>.dlq``. A command
past its deadline is answered ``expired`` and never run; a command's handler result is its reply.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from contracts import codec
from contracts.base import Command, DecodeError, Empty, Envelope, ErrorCode, Message, Reply, utcnow
from contracts.topology import StreamSpec
from shared import tracing
from shared.breaker import CircuitOpenError
from shared.bus import context, naming, spans, wire
from shared.bus.deadletter import DeadLetters, Provenance
from shared.bus.errors import PermanentError
from shared.bus.metrics import BusMetrics
from shared.bus.replies import ReplySender
from shared.bus.settings import ConsumerSettings
from shared.redis.client import AnyRedis
from shared.tracing import state as tracing_state

log = logging.getLogger(__name__)

Handler = Callable[[Any, Envelope], Awaitable[Any]]
"""``async def handle(message, envelope) -> result``; a command handler returns its reply."""


class Outcome(enum.Enum):
    """What became of a message: handled (ack + mark), discarded (ack only), returned (no ack)."""

    HANDLED = "handled"
    DISCARDED = "discarded"
    RETURNED = "returned"


class Runner:
    """Runs the messages of one stream for one group."""

    def __init__(
        self,
        client: AnyRedis,
        spec: StreamSpec,
        *,
        group: str,
        consumer: str,
        handlers: dict[tuple[str, int], Handler],
        settings: ConsumerSettings,
        replies: ReplySender,
        metrics: BusMetrics | None,
    ) -> None:
        self._client = client
        self.spec = spec
        self.group = group
        self.consumer = consumer
        self._handlers = handlers
        self._settings = settings
        self._replies = replies
        self._metrics = metrics
        self.dead_letters = DeadLetters(client, spec)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self.kept: dict[str, bytes] = {}
        """Replies of handled commands whose marks are not written yet, by message id."""

    async def run(
        self, d: wire.Delivery, fields: wire.Fields, *, attempts: int, stop: asyncio.Event
    ) -> Outcome:
        """Run ``d`` until handled, dead-lettered, expired, or returned because of ``stop``.

        With tracing on, under a consumer span ``process <type>`` whose parent is the span the
        envelope's ``traceparent`` names (the sender's ``send`` span).
        """
        if tracing_state.tracer is None:
            return await self._run(d, fields, attempts=attempts, stop=stop)
        with tracing.span(
            f"process {d.envelope.type}",
            kind="consumer",
            traceparent=d.envelope.traceparent,
            tracestate=d.envelope.tracestate,
            attributes=spans.consumer_attributes(
                self.spec.name,
                d.envelope,
                group=self.group,
                consumer=self.consumer,
                partition=d.partition,
                entry_id=d.entry_id,
            ),
        ) as span:
            outcome = await self._run(d, fields, attempts=attempts, stop=stop)
            if span is not None:
                span.set_attribute("parley.outcome", outcome.value)
            return outcome

    async def _run(
        self, d: wire.Delivery, fields: wire.Fields, *, attempts: int, stop: asyncio.Event
    ) -> Outcome:
        handler = self._handlers[(d.envelope.type, d.envelope.version)]
        is_command = isinstance(d.message, Command)
        first_failure: datetime | None = None
        while True:
            if stop.is_set():
                return Outcome.RETURNED
            if is_command and d.envelope.expired():
                await self._replies.send(
                    d.envelope, Reply.failure(ErrorCode.EXPIRED, "deadline passed before execution")
                )
                self._count(d, "expired")
                return Outcome.DISCARDED
            attempts += 1
            started = time.perf_counter()
            try:
                async with self._slots:
                    with context.handling(d.envelope):
                        result = await handler(d.message, d.envelope)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if is_command and isinstance(e, CircuitOpenError):
                    # A dependency's breaker is open: the caller hears it now, with when to retry,
                    # rather than after the retries outlive its deadline.
                    await self._replies.send(d.envelope, _unavailable(e))
                    self._count(d, "unavailable")
                    return Outcome.DISCARDED
                final = isinstance(e, PermanentError) or attempts >= self._settings.max_deliveries
                tracing.record_error(e, status=final)  # a retried attempt may still succeed
                now = utcnow()
                first_failure = first_failure or now
                if final:
                    await self._give_up(d, fields, e, attempts, first_failure, now)
                    return Outcome.DISCARDED
                await self._note_failure(d, e, attempts)
                delay = min(
                    self._settings.backoff_max, self._settings.backoff_base * 2 ** (attempts - 1)
                )
                if await _stopped_within(stop, delay):
                    return Outcome.RETURNED
                continue
            if self._metrics is not None:
                self._metrics.observe_handler(
                    self.spec.name, self.group, d.envelope.type, time.perf_counter() - started
                )
            if is_command:
                reply = codec.encode(_as_reply(result))
                # Kept before it is sent: a duplicate of the command that arrives once the caller
                # has the reply (a producer retry) must find it, or it would get no answer. It is
                # kept here until the acknowledgement script stores it with the message's mark
                # (a type without marks keeps none: its handler answers a duplicate itself).
                if (
                    self._settings.reply_ttl > 0
                    and d.envelope.reply_to
                    and self._settings.marks(d.envelope.type)
                ):
                    self.kept[d.envelope.id] = reply
                await self._replies.send_encoded(d.envelope, reply)
            self._count(d, "handled")
            return Outcome.HANDLED

    def _reply_key(self, d: wire.Delivery) -> str:
        prefix = naming.dedupe_prefix(self.spec, self.group, d.partition)
        return naming.kept_reply_key(prefix, d.envelope.id)

    def settled(self, message_ids: list[str]) -> None:
        """Their replies are stored with their marks now: stop keeping them in memory."""
        for message_id in message_ids:
            self.kept.pop(message_id, None)

    async def answer_duplicate(self, d: wire.Delivery, *, in_flight: bool = False) -> None:
        """Answer a command that was already handled: its kept reply, else ``conflict``.

        ``in_flight``: the original may still be running, and will answer itself; only a kept
        reply (it finished, its mark is not written yet) is sent then.
        """
        if not isinstance(d.message, Command) or not d.envelope.reply_to:
            return
        kept: bytes | str | None = self.kept.get(d.envelope.id)
        if kept is None:
            try:
                kept = await self._client.get(self._reply_key(d))
            except RedisError:
                kept = None
        if kept is not None:
            await self._replies.send_encoded(
                d.envelope, kept if isinstance(kept, bytes) else kept.encode()
            )
            return
        if in_flight:
            return
        await self._replies.send(
            d.envelope,
            Reply.failure(ErrorCode.CONFLICT, "this command was already handled"),
        )

    async def dead_letter_raw(
        self, partition: int, entry_id: str, fields: wire.Fields, error: DecodeError
    ) -> None:
        """Dead-letter an entry that cannot be decoded (no retry could help)."""
        now = utcnow()
        log.error("undecodable entry %s on %s[%d]: %s", entry_id, self.spec.name, partition, error)
        await self.dead_letters.add(
            fields,
            Provenance(
                stream=self.spec.name,
                partition=partition,
                entry_id=entry_id,
                group=self.group,
                error=f"decode: {error}",
                attempts=1,
                first_failure=now,
                last_failure=now,
            ),
        )
        if self._metrics is not None:
            self._metrics.dead_lettered.labels(self.spec.name, str(partition), self.group).inc()

    async def _note_failure(self, d: wire.Delivery, error: Exception, attempts: int) -> None:
        log.warning(
            "handler failed (attempt %d of %d) for %s %s: %r",
            attempts,
            self._settings.max_deliveries,
            d.envelope.type,
            d.envelope.id,
            error,
        )
        if self._metrics is not None:
            self._metrics.retries.labels(self.spec.name, str(d.partition), self.group).inc()
        try:
            # Persist the attempt count in the entry's delivery counter (and reset its idle time).
            await self._client.xclaim(
                self.spec.key(d.partition),
                self.group,
                self.consumer,
                0,
                [d.entry_id],
                retrycount=attempts,
                justid=True,
            )
        except Exception:
            log.debug("could not record attempt count for %s", d.entry_id, exc_info=True)

    async def _give_up(
        self,
        d: wire.Delivery,
        fields: wire.Fields,
        error: Exception,
        attempts: int,
        first: datetime,
        last: datetime,
    ) -> None:
        log.error(
            "dead-lettering %s %s after %d attempt(s): %r",
            d.envelope.type,
            d.envelope.id,
            attempts,
            error,
        )
        provenance = Provenance(
            stream=self.spec.name,
            partition=d.partition,
            entry_id=d.entry_id,
            group=self.group,
            error=f"{type(error).__name__}: {error}",
            attempts=attempts,
            first_failure=first,
            last_failure=last,
        )
        await self.dead_letters.add(fields, provenance)
        if self._metrics is not None:
            self._metrics.dead_lettered.labels(self.spec.name, str(d.partition), self.group).inc()
        self._count(d, "dead_lettered")
        if isinstance(d.message, Command):
            await self._replies.send(
                d.envelope, Reply.failure(ErrorCode.INTERNAL, "the command failed; it was recorded")
            )

    def _count(self, d: wire.Delivery, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.handled.labels(
                self.spec.name, str(d.partition), self.group, outcome
            ).inc()


def _unavailable(error: CircuitOpenError) -> Reply[Any]:
    return Reply.failure(
        ErrorCode.UNAVAILABLE,
        "a dependency is unavailable; retry later",
        retry_after=round(error.retry_after, 3),
    )


def _as_reply(result: Any) -> Reply[Any]:
    if isinstance(result, Reply):
        return result
    return Reply.success(Empty() if result is None else result)


async def _stopped_within(stop: asyncio.Event, delay: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return False
    return True


def handler_table(handlers: dict[type[Message], Handler]) -> dict[tuple[str, int], Handler]:
    """Index handlers by the (type, version) an envelope names."""
    return {(cls.TYPE, cls.VERSION): h for cls, h in handlers.items()}
