"""The WebSocket's guards against real Redis: eavesdropping by resume, and the opening limits.

Two gateways on the real cluster with stand-in services (``ws_harness``): the per-user cap must
hold over both, the handshake budget per client address (``X-Forwarded-For``, trusted here, so
each test is its own address).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from contracts import chat
from contracts.base import ErrorCode
from gateway.bootstrap import KEYSPACE
from gateway.domain import close_codes
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.store.redis_connection_slots import RedisConnectionSlots
from shared.keys import KeySpace
from shared.redis.client import AnyRedis, RedisSettings, create_client

from .ws_harness import Gateway, message, receive, running_gateway, uid

pytestmark = pytest.mark.integration

OPTIONS = RealtimeOptions(
    heartbeat_interval=60.0, max_user_connections=2, handshake_rate=1, handshake_burst=3
)


@pytest.fixture(scope="module")
async def gateways(redis_url: str) -> AsyncIterator[tuple[Gateway, Gateway]]:
    async with (
        running_gateway(redis_url, OPTIONS, trusted_proxies="127.0.0.1") as one,
        running_gateway(redis_url, OPTIONS, trusted_proxies="127.0.0.1") as two,
    ):
        yield one, two


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


def address() -> dict[str, str]:
    n = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250}"}


async def connect(gw: Gateway, user_id: str, *convs: str) -> Any:
    """A ready client of ``user_id`` (a member of ``convs``), from an address of its own."""
    gw.services.conversations[user_id] = list(convs)
    ws = await websockets.connect(gw.ws_url(gw.mint.token(user_id)), additional_headers=address())
    assert (await receive(ws))["type"] == "ready"
    return ws


def chat_of_both(gateways: tuple[Gateway, Gateway], **attributes: Any) -> None:
    """Set the stand-in chat's ``attributes`` behind both gateways (they share its group, so
    either may answer a command of the other)."""
    for gw in gateways:
        for name, value in attributes.items():
            setattr(gw.services, name, value)


async def refused(ws: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The frames before the server closed the socket (within 5 s each), and its close code."""
    frames = []
    try:
        for _ in range(10):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    except ConnectionClosed:
        return frames, ws.close_code
    raise AssertionError(f"not closed after {frames}")


async def frames_within(ws: Any, seconds: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), seconds)))
    except TimeoutError:
        return frames


# -- resume: nothing before chat says the user is a member -----------------------------------------


@pytest.mark.parametrize("chat_answers", ["not a member", "unavailable"])
async def test_a_resume_chat_does_not_confirm_delivers_nothing_of_a_busy_conversation(
    gateways: tuple[Gateway, Gateway], chat_answers: str
) -> None:
    gw = gateways[0]
    me, conv = uid(), uid("c")
    ws = await connect(gw, me)
    if chat_answers == "unavailable":
        for g in gateways:
            g.services.conversations[me] = [conv]  # a member, but chat cannot say so
        chat_of_both(gateways, history_failure=ErrorCode.UNAVAILABLE)
    chat_of_both(gateways, history_delay=0.5)
    try:
        await ws.send(json.dumps({"type": "resume", "conversations": {conv: 0}}))
        await asyncio.sleep(0.1)  # subscribed, chat still thinking
        for seq in range(1, 6):
            posted = chat.MessagePosted(conversation_id=conv, message=message(conv, seq))
            await gw.publish("rt.conv", conv, posted)
            typing = chat.TypingChanged(conversation_id=conv, user_id="x", typing=True)
            await gw.publish("rt.conv", conv, typing)
        frames = await frames_within(ws, 1.5)
        await gw.publish("rt.conv", conv, posted)  # after the answer: not subscribed
        frames += await frames_within(ws, 0.3)
    finally:
        chat_of_both(gateways, history_delay=0.0, history_failure=None)
        await ws.close()
    code = "not_found" if chat_answers == "not a member" else "unavailable"
    assert [(f["type"], f["code"], f["conversation_id"]) for f in frames] == [("error", code, conv)]
    assert gw.app.state.realtime.hub.refcount(f"rt:{{conv:{conv}}}") == 0


async def test_a_member_resuming_a_conversation_not_held_misses_nothing_published_meanwhile(
    gateways: tuple[Gateway, Gateway],
) -> None:
    gw = gateways[0]
    me, conv = uid(), uid("c")
    ws = await connect(gw, me)  # not a member yet: the conversation is not in ready
    for g in gateways:
        g.services.conversations[me] = [conv]
        g.services.add_messages(conv, 5)
    chat_of_both(gateways, history_delay=0.5)
    try:
        await ws.send(json.dumps({"type": "resume", "conversations": {conv: 2}}))
        await asyncio.sleep(0.1)
        for g in gateways:
            g.services.add_messages(conv, 2)  # 6 and 7, live while chat answers
        for seq in (6, 7):
            posted = chat.MessagePosted(conversation_id=conv, message=message(conv, seq))
            await gw.publish("rt.conv", conv, posted)
        frames = [await receive(ws, skip=("typing",)) for _ in range(6)]
    finally:
        chat_of_both(gateways, history_delay=0.0)
        await ws.close()
    assert [f["message"]["seq"] for f in frames[:5]] == [3, 4, 5, 6, 7]
    assert frames[5]["type"] == "resumed" and frames[5]["recovered"] is True


# -- the per-user connection cap, over every gateway -----------------------------------------------


async def test_the_connection_cap_holds_over_two_gateways_and_frees_on_close(
    gateways: tuple[Gateway, Gateway],
) -> None:
    one, two = gateways
    me = uid()
    first = await connect(one, me)
    second = await connect(two, me)
    extra = await websockets.connect(one.ws_url(one.mint.token(me)), additional_headers=address())
    frames, code = await refused(extra)
    assert code == close_codes.TOO_MANY_CONNECTIONS
    assert [f["code"] for f in frames] == ["too_many_connections"]
    await first.close()
    await asyncio.sleep(0.2)
    again = await connect(two, me)
    await again.close()
    await second.close()


async def test_slots_lapse_unless_renewed_so_a_crashed_gateway_leaks_none(
    redis: AnyRedis,
) -> None:
    slots = RedisConnectionSlots(redis, KeySpace(f"gw{uuid.uuid4().hex[:8]}"))
    me = uid()
    assert await slots.claim(me, "a", cap=2, ttl=0.4)
    assert await slots.claim(me, "b", cap=2, ttl=5)
    assert not await slots.claim(me, "c", cap=2, ttl=5)
    assert await slots.claim(me, "b", cap=2, ttl=5)  # a connection already counted: idempotent
    await asyncio.sleep(0.6)  # "a"'s gateway died: nobody renewed it
    assert await slots.claim(me, "c", cap=2, ttl=5)
    await slots.renew(me, "c", ttl=5)
    await slots.release(me, "b")
    assert await slots.claim(me, "d", cap=2, ttl=5)
    assert 0 < await redis.pttl(slots.key(me)) <= 5000


async def test_slots_live_under_the_gateways_prefix_one_key_per_user(redis: AnyRedis) -> None:
    assert RedisConnectionSlots(redis, KEYSPACE).key("u1") == "gateway:wsconn:{user:u1}"


# -- the handshake budget per address --------------------------------------------------------------


async def test_handshakes_past_the_address_budget_are_refused_with_4029_and_a_retry_time(
    gateways: tuple[Gateway, Gateway],
) -> None:
    one, two = gateways
    me, mine, other = uid(), address(), address()
    url = one.ws_url(one.mint.token(me))
    for gw in (one, two, one):  # the burst (3), counted over both gateways
        ws = await websockets.connect(gw.ws_url(gw.mint.token(me)), additional_headers=mine)
        assert (await receive(ws))["type"] == "ready"
        await ws.close()
    frames, code = await refused(await websockets.connect(url, additional_headers=mine))
    assert code == close_codes.RATE_LIMITED
    assert frames[0]["code"] == "rate_limited" and 0 < frames[0]["retry_after"] <= 1.0
    ws = await websockets.connect(url, additional_headers=other)  # its own budget
    assert (await receive(ws))["type"] == "ready"
    await ws.close()


async def test_connects_are_admitted_in_turns_and_a_client_awaited_for_its_auth_holds_none(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storm of connects is let through ``admissions`` at a time (each holds a turn for its
    Redis work), and a client that opened a socket but has not authenticated holds no turn."""
    from gateway.handlers import realtime_lifecycle

    listing = realtime_lifecycle._conversations
    active, peak = 0, 0

    async def slow_listing(conn: Any) -> list[str]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.05)
            return await listing(conn)
        finally:
            active -= 1

    monkeypatch.setattr(realtime_lifecycle, "_conversations", slow_listing)
    options = RealtimeOptions(heartbeat_interval=60.0, admissions=2, auth_timeout=5.0)
    async with running_gateway(redis_url, options) as gw:
        # Two sockets that never authenticate: were a turn held while awaiting the auth frame,
        # nobody else would be admitted for their five seconds.
        idle = [await websockets.connect(gw.ws_url()) for _ in range(2)]
        users = [uid("u") for _ in range(8)]

        async def ready(user_id: str) -> str:
            ws = await websockets.connect(gw.ws_url(gw.mint.token(user_id)))
            async with ws:
                return str((await asyncio.wait_for(receive(ws), 3.0))["type"])

        assert await asyncio.gather(*(ready(u) for u in users)) == ["ready"] * 8
        assert 0 < peak <= 2  # in turns, never more than the admissions at once
        for ws in idle:
            await ws.close()
