"""Request/reply: typed replies, error codes, timeouts, and commands found past their deadline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import ClassVar

import msgspec
import pytest

from contracts import codec, registry
from contracts.base import Command, Envelope, ErrorCode, Reply, utcnow
from contracts.topology import StreamSpec, partition_of
from shared.bus import (
    Consumer,
    ConsumerSettings,
    Publisher,
    Requester,
    RequestTimeoutError,
    naming,
)
from shared.bus.replies import ReplyFrame
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(block_ms=100, lease_ttl=1.5, backoff_base=0.01)


class Echoed(msgspec.Struct, frozen=True, kw_only=True):
    text: str


class Echo(Command, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bustest.echo"
    STREAM: ClassVar[str] = "bustest.commands"
    KEY: ClassVar[str | None] = "key"
    RESULT: ClassVar[type[msgspec.Struct]] = Echoed
    TIMEOUT: ClassVar[float] = 2.0

    key: str
    text: str
    missing: bool = False


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
def spec() -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.commands", owner=owner, partitions=2, max_len=10_000)


class Service:
    """The command side: records what it executed."""

    def __init__(self) -> None:
        self.executed: list[str] = []

    async def echo(self, cmd: Echo, env: Envelope) -> Reply[Echoed]:
        self.executed.append(cmd.text)
        if cmd.missing:
            return Reply.failure(ErrorCode.NOT_FOUND, "no such thing")
        return Reply.success(Echoed(text=cmd.text.upper()))


def parts(client: AnyRedis, spec: StreamSpec) -> tuple[Publisher, Service, Consumer]:
    service = Service()
    consumer = Consumer(
        client,
        group="echoer",
        handlers={Echo: service.echo},
        settings=FAST,
        stream_of=lambda _: spec,
    )
    return Publisher(client, producer="caller", stream_of=lambda _: spec), service, consumer


async def test_a_request_returns_the_typed_reply(client: AnyRedis, spec: StreamSpec) -> None:
    pub, _, consumer = parts(client, spec)
    async with consumer, Requester(client, pub, instance_id=uuid.uuid4().hex) as requester:
        reply = await requester.request(Echo(key="a", text="hi"), timeout=5)
    assert reply.ok
    assert reply.result == Echoed(text="HI")


async def test_a_failed_command_replies_with_its_error_code(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub, _, consumer = parts(client, spec)
    async with consumer, Requester(client, pub, instance_id=uuid.uuid4().hex) as requester:
        reply = await requester.request(Echo(key="a", text="x", missing=True), timeout=5)
    assert not reply.ok
    assert reply.error is not None
    assert reply.error.code is ErrorCode.NOT_FOUND


async def test_a_request_nobody_answers_raises_a_timeout(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub, _, _ = parts(client, spec)
    async with Requester(client, pub, instance_id=uuid.uuid4().hex) as requester:
        with pytest.raises(RequestTimeoutError) as caught:
            await requester.request(Echo(key="a", text="anyone?"), timeout=0.3)
    assert caught.value.command_type == "bustest.echo"


async def test_a_command_past_its_deadline_is_answered_expired_and_never_run(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub, service, consumer = parts(client, spec)
    channel = registry.channel("reply").key(f"probe-{uuid.uuid4().hex}")
    late = Echo(key="a", text="too late")
    env = pub.envelope_for(late, deadline=utcnow() - timedelta(seconds=1), reply_to=channel)
    async with PubSub(client).subscribe(channel, ReplyFrame) as replies:
        await pub.publish(late, envelope=env)
        async with consumer:
            frame = await replies.get(timeout=5)
            await pub.publish(Echo(key="a", text="in time"))
            async with asyncio.timeout(5):
                while service.executed != ["in time"]:  # noqa: ASYNC110 - polls what other tasks change
                    await asyncio.sleep(0.02)
    reply = codec.decode(Echo.reply_type(), frame.payload)
    assert frame.envelope.causation_id == env.id
    assert reply.error is not None and reply.error.code is ErrorCode.EXPIRED
    assert service.executed == ["in time"]


def probe(pub: Publisher, text: str) -> tuple[str, Echo, Envelope]:
    """A reply channel of the test's own, an ``Echo`` of ``text``, its envelope replying there."""
    channel = registry.channel("reply").key(f"probe-{uuid.uuid4().hex}")
    command = Echo(key="a", text=text)
    return channel, command, pub.envelope_for(command, reply_to=channel)


def same_reply(first: ReplyFrame, second: ReplyFrame) -> bool:
    kind = Echo.reply_type()
    return bool(codec.decode(kind, second.payload) == codec.decode(kind, first.payload))


async def test_a_duplicate_of_a_handled_command_gets_the_same_reply_and_runs_nothing(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub, service, consumer = parts(client, spec)
    channel, command, env = probe(pub, "once")
    async with PubSub(client).subscribe(channel, ReplyFrame) as replies, consumer:
        await pub.publish(command, envelope=env)
        first = await replies.get(timeout=5)
        # A producer retry: the very same message (same id) appended again, later.
        await pub.publish(command, envelope=env)
        second = await replies.get(timeout=5)
    assert service.executed == ["once"]
    assert same_reply(first, second)
    assert codec.decode(Echo.reply_type(), second.payload).result == Echoed(text="ONCE")


async def test_a_duplicate_reaching_a_restarted_consumer_gets_the_reply_kept_with_the_mark(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub, service, consumer = parts(client, spec)
    channel, command, env = probe(pub, "kept")
    async with PubSub(client).subscribe(channel, ReplyFrame) as replies:
        async with consumer:
            await pub.publish(command, envelope=env)
            first = await replies.get(timeout=5)
        # Stopped: its acknowledgements are flushed and its memory is gone. The reply is in
        # Redis beside the message's "handled" mark, written by the same script.
        prefix = naming.dedupe_prefix(spec, "echoer", partition_of("a", spec.partitions))
        assert await client.get(naming.kept_reply_key(prefix, env.id)) is not None
        assert await client.exists(prefix + env.id) == 1
        _, again, restarted = parts(client, spec)
        async with restarted:
            await pub.publish(command, envelope=env)  # a producer retry, after the restart
            second = await replies.get(timeout=5)
    assert service.executed == ["kept"] and again.executed == []
    assert same_reply(first, second)
