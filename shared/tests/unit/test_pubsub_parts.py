"""The parts of multiplexed pub/sub that need no Redis: a link's command batching and reply
bookkeeping, and a subscription's queue, overflow and drop policy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import pytest
from redis.exceptions import ResponseError

from shared.codec import Codec
from shared.pubsub import SlowConsumerError
from shared.pubsub.link import Link
from shared.pubsub.multiplexer import Receiver
from shared.pubsub.subscription import DROPPABLE, Subscription

pytestmark = pytest.mark.unit


class Posted(msgspec.Struct, frozen=True):
    seq: int


class Owner:
    """What a link reports (LinkOwner), recorded."""

    def __init__(self) -> None:
        self.confirmations: list[bytes] = []
        self.evictions: list[bytes] = []

    def delivered(self, channel: bytes, payload: bytes) -> None:
        raise AssertionError("no message in these tests")

    def confirmed(self, link: Link, channel: bytes) -> None:
        self.confirmations.append(channel)

    def evicted(self, link: Link, channels: list[bytes]) -> None:
        self.evictions += channels

    def ended(self, link: Link, error: BaseException | None) -> None:
        raise AssertionError("no connection in these tests")


def link(*, sharded: bool = True) -> tuple[Link, Owner]:
    owner = Owner()
    return Link(owner, "n1", conn=None, sharded=sharded), owner


async def test_channels_queued_together_go_as_one_command_per_slot() -> None:
    lk, _ = link()
    for channel, slot in [(b"a", 1), (b"b", 2), (b"c", 1)]:
        lk.subscribe(channel, slot)
    assert lk._commands(lk._queued) == [(b"SSUBSCRIBE", b"a", b"c"), (b"SSUBSCRIBE", b"b")]


async def test_an_unsubscribe_then_subscribe_of_one_channel_keeps_its_order() -> None:
    lk, _ = link()
    lk.subscribe(b"a", 1)
    lk.unsubscribe(b"a", 1)
    lk.subscribe(b"a", 1)
    assert lk._commands(lk._queued) == [
        (b"SSUBSCRIBE", b"a"),
        (b"SUNSUBSCRIBE", b"a"),
        (b"SSUBSCRIBE", b"a"),
    ]
    assert lk.channels == {b"a"}


async def test_a_single_node_subscribes_in_bounded_chunks() -> None:
    lk, _ = link(sharded=False)
    for n in range(1200):
        lk.subscribe(f"c{n}".encode(), 0)
    commands = lk._commands(lk._queued)
    assert [len(c) - 1 for c in commands] == [500, 500, 200]
    assert {c[0] for c in commands} == {b"SUBSCRIBE"}


async def test_only_an_unsubscribe_nobody_asked_for_evicts_the_channel() -> None:
    lk, owner = link()
    lk.unsubscribe(b"mine", 1)
    lk._commands(lk._queued)
    lk._push(b"sunsubscribe", b"mine", 0)  # the confirmation of ours
    lk._push(b"sunsubscribe", b"moved", 0)  # Redis dropped it: its slot left the node
    assert owner.evictions == [b"moved"]


async def test_a_refused_subscribe_evicts_exactly_the_channels_of_that_command() -> None:
    lk, owner = link()
    lk.subscribe(b"a", 1)
    lk.subscribe(b"b", 2)
    lk._commands(lk._queued)
    lk._push(b"ssubscribe", b"a", 1)
    lk._refused(ResponseError("MOVED 2 127.0.0.1:7002"))
    assert owner.confirmations == [b"a"] and owner.evictions == [b"b"]


class Mux:
    """Stands for the multiplexer: records attach and detach."""

    def __init__(self) -> None:
        self.attached: set[str] = set()

    async def attach(self, receivers: Mapping[str, Receiver], key: object) -> None:
        self.attached |= set(receivers)

    def detach(self, channels: Iterable[str], key: object) -> None:
        self.attached -= set(channels)


def frame(seq: int, *, droppable: bool = False) -> bytes:
    return bytes((DROPPABLE if droppable else 0,)) + Codec(Posted).encode(Posted(seq))


async def subscription(queue_size: int, overflow_timeout: float | None) -> Subscription[Posted]:
    mux: Any = Mux()
    sub = Subscription(
        mux, "ch", Codec(Posted), queue_size=queue_size, overflow_timeout=overflow_timeout
    )
    return await sub.__aenter__()


async def test_a_consumer_that_catches_up_within_the_timeout_loses_nothing() -> None:
    sub = await subscription(2, 0.2)
    for seq in range(4):  # two queued, two in the overflow
        sub.receive(frame(seq))
    assert [await sub.get(timeout=1) for _ in range(4)] == [Posted(s) for s in range(4)]
    await asyncio.sleep(0.3)  # the overflow timer was stopped when it caught up
    sub.receive(frame(4))
    assert await sub.get(timeout=1) == Posted(4)


async def test_an_overflow_past_its_bound_closes_the_subscription_at_once() -> None:
    sub = await subscription(2, 60)
    for seq in range(5):  # 2 queued + 2 overflow, the fifth is past the bound
        sub.receive(frame(seq))
    assert [await sub.get(timeout=1) for _ in range(2)] == [Posted(0), Posted(1)]
    with pytest.raises(SlowConsumerError):
        await sub.get(timeout=1)


async def test_droppable_frames_never_enter_the_overflow() -> None:
    sub = await subscription(1, 60)
    sub.receive(frame(0))
    sub.receive(frame(1, droppable=True))
    sub.receive(frame(2))
    assert sub.dropped == 1
    assert [await sub.get(timeout=1) for _ in range(2)] == [Posted(0), Posted(2)]


async def test_a_closed_subscription_is_detached_from_its_channel() -> None:
    mux: Any = Mux()
    async with Subscription(mux, "ch", Codec(Posted), queue_size=4, overflow_timeout=1):
        assert mux.attached == {"ch"}
    assert mux.attached == set()
