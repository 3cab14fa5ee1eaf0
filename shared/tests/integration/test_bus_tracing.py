"""Spans of the bus and the cache on the real cluster: one trace from a request to its effects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from contracts.base import Command, Envelope, Event, Reply
from contracts.topology import StreamSpec
from shared import tracing
from shared.bus import Consumer, ConsumerSettings, Publisher, Requester
from shared.cache import Cache
from shared.keys import KeySpace
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.ttl import TtlRule

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(block_ms=100, lease_ttl=1.5, backoff_base=0.01, max_deliveries=2)


class Done(msgspec.Struct, frozen=True, kw_only=True):
    text: str


class Shout(Command, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "tracetest.shout"
    STREAM: ClassVar[str] = "tracetest.commands"
    KEY: ClassVar[str | None] = "key"
    RESULT: ClassVar[type[msgspec.Struct]] = Done
    TIMEOUT: ClassVar[float] = 5.0

    key: str
    text: str


class Shouted(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "tracetest.shouted"
    STREAM: ClassVar[str] = "tracetest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    text: str


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("bus-test", exporter=exporter)
    yield exporter
    tracing.shutdown()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def _spec(kind: str) -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.{kind}", owner=owner, partitions=2, max_len=10_000)


def _named(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_request_its_handling_and_the_event_it_causes_make_one_trace(
    client: AnyRedis, spans: InMemorySpanExporter
) -> None:
    commands, events = _spec("commands"), _spec("events")
    specs = {Shout: commands, Shouted: events}
    publisher = Publisher(client, producer="caller", stream_of=lambda t: specs[t])
    seen: list[Envelope] = []
    handled = asyncio.Event()

    async def shout(cmd: Shout, env: Envelope) -> Reply[Done]:
        await publisher.publish(Shouted(key=cmd.key, text=cmd.text.upper()))
        return Reply.success(Done(text=cmd.text.upper()))

    async def hear(event: Shouted, env: Envelope) -> None:
        seen.append(env)
        handled.set()

    shouter = Consumer(
        client, group="shouter", handlers={Shout: shout}, settings=FAST, stream_of=specs.get
    )
    listener = Consumer(
        client, group="listener", handlers={Shouted: hear}, settings=FAST, stream_of=specs.get
    )
    async with shouter, listener, Requester(client, publisher, instance_id=uuid.uuid4().hex) as rq:
        with tracing.span("request", kind="server"):
            reply = await rq.request(Shout(key="k", text="hi"))
        await asyncio.wait_for(handled.wait(), 10)
    assert reply.ok
    await asyncio.sleep(0)  # the listener's span ends once its handler returned

    request = _named(spans, "request")
    send = _named(spans, "send tracetest.shout")
    process = _named(spans, "process tracetest.shout")
    reply_span = _named(spans, "PUBLISH reply")
    emitted = _named(spans, "send tracetest.shouted")
    heard = _named(spans, "process tracetest.shouted")
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {request.context.trace_id}
    assert (send.kind, _parent_of(send)) == (SpanKind.PRODUCER, request.context.span_id)
    assert (process.kind, _parent_of(process)) == (SpanKind.CONSUMER, send.context.span_id)
    assert _parent_of(reply_span) == process.context.span_id
    assert _parent_of(emitted) == process.context.span_id
    assert _parent_of(heard) == emitted.context.span_id
    assert process.attributes is not None and heard.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == "shouter"
    assert process.attributes["parley.outcome"] == "handled"
    assert heard.attributes["messaging.destination.name"] == events.name
    # The entry carries its send span as its traceparent: what a log line of the handler names.
    assert seen[0].traceparent is not None
    assert seen[0].traceparent.startswith(
        f"00-{emitted.context.trace_id:032x}-{emitted.context.span_id:016x}-"
    )


async def test_a_dead_lettered_message_leaves_a_failed_span_with_each_attempt(
    client: AnyRedis, spans: InMemorySpanExporter
) -> None:
    events = _spec("events")
    attempts = 0
    done = asyncio.Event()

    async def refuse(event: Shouted, env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= FAST.max_deliveries:
            done.set()
        raise RuntimeError(f"attempt {attempts}")

    publisher = Publisher(client, producer="caller", stream_of=lambda _: events)
    consumer = Consumer(
        client,
        group="refuser",
        handlers={Shouted: refuse},
        settings=FAST,
        stream_of=lambda _: events,
    )
    async with consumer:
        await publisher.publish(Shouted(key="k", text="no"))
        await asyncio.wait_for(done.wait(), 10)
        async with asyncio.timeout(10):
            while not any(s.name.startswith("process") for s in spans.get_finished_spans()):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    process = _named(spans, "process tracetest.shouted")
    assert process.status.status_code is StatusCode.ERROR
    assert [e.name for e in process.events] == ["exception"] * FAST.max_deliveries
    assert process.attributes is not None
    assert process.attributes["parley.outcome"] == "discarded"


async def test_cache_round_trips_are_spans_of_the_work_that_needs_them(
    client: AnyRedis, spans: InMemorySpanExporter
) -> None:
    cache = Cache(client, KeySpace(f"t{uuid.uuid4().hex[:8]}"), "item", Done, rule=TtlRule(ttl=60))

    async def load() -> Done:
        return Done(text="loaded")

    await cache.get_or_load("outside", load)  # no span: nothing traced it
    with tracing.span("handler"):
        await cache.get_or_load("k", load)
        await cache.get_or_load("k", load)
    gets = [s for s in spans.get_finished_spans() if s.name == "cache get"]
    sets = [s for s in spans.get_finished_spans() if s.name == "cache set"]
    hits = [g.attributes["parley.cache.hit"] for g in gets if g.attributes]
    # The miss reads once more under the load lock (another process may have stored it).
    assert hits[0] is False and hits[-1] is True and hits.count(True) == 1
    assert len(sets) == 1
    handler = _named(spans, "handler")
    assert all(_parent_of(s) == handler.context.span_id for s in [*gets, *sets])
    assert all(s.kind is SpanKind.CLIENT for s in [*gets, *sets])
