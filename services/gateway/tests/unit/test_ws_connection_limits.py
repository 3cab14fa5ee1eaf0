"""Per-connection limits: frames per second, resumes in flight, state only for held ids."""

from __future__ import annotations

import uuid
from typing import cast

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from contracts import chat
from gateway.config import Settings
from gateway.domain import close_codes
from gateway.domain.frames import MAX_FRAME_BYTES
from gateway.handlers.realtime import Close
from gateway.handlers.realtime_limits import SocketLimits
from gateway.handlers.realtime_options import RealtimeOptions
from shared.ratelimit import RateLimiter

from .test_ws_connection import connection, queued, settle

pytestmark = pytest.mark.unit


def refused(limit: str) -> float:
    """How many refusals ``parley_gateway_ws_refused_total`` counts for ``limit`` so far."""
    value = REGISTRY.get_sample_value("parley_gateway_ws_refused_total", {"limit": limit})
    return value or 0.0


async def test_typing_in_conversations_not_held_is_refused_and_remembers_nothing() -> None:
    conn, _, backend = connection(frame_burst=1000)
    junk = [uuid.uuid4().hex for _ in range(200)]
    for conv in junk:
        conn.receive(f'{{"type": "typing", "conversation_id": "{conv}"}}')
    await settle(conn)
    frames = await queued(conn)
    assert [(f["code"], f["conversation_id"]) for f in frames] == [
        ("not_found", conv) for conv in junk
    ]
    assert backend.sent == []
    assert conn._typing_sent == {}


async def test_leaving_a_conversation_forgets_its_typing_state() -> None:
    conn, _, backend = connection(frame_rate=1000.0)
    await conn.join("c1")
    conn.receive('{"type": "typing", "conversation_id": "c1"}')
    await settle(conn)
    assert isinstance(backend.sent[0], chat.SetTyping)
    await conn.leave("c1")
    assert conn._typing_sent == {}


async def test_resume_entries_past_the_cap_are_refused_until_those_in_flight_end() -> None:
    conn, _, _ = connection(max_resuming=3)
    conn.receive('{"type": "resume", "conversations": {"a": 0, "b": 0}}')
    conn.receive('{"type": "resume", "conversations": {"c": 0, "d": 0}}')
    assert conn._resuming == 2
    await settle(conn)  # answered (the fake chat knows no conversation)
    assert conn._resuming == 0
    conn.receive('{"type": "resume", "conversations": {"c": 0, "d": 0}}')
    await settle(conn)
    frames = await queued(conn)
    refused = [f for f in frames if f["code"] == "rate_limited"]
    assert len(refused) == 1 and "at most 3" in refused[0]["message"]
    assert sorted(f["conversation_id"] for f in frames if "conversation_id" in f) == [
        "a",
        "b",
        "c",
        "d",
    ]


async def test_a_flood_is_told_once_then_dropped_then_closed_with_4029() -> None:
    before = refused("frames")
    conn, _, _ = connection(frame_rate=0.001, frame_burst=5)
    for i in range(5):
        conn.receive(f'{{"type": "ping", "id": "{i}"}}')
    for _ in range(5):
        conn.receive('{"type": "ping", "id": "over"}')
    assert conn.closing is None
    frames = await queued(conn)
    assert [f["type"] for f in frames] == ["pong"] * 5 + ["error"]
    assert frames[-1]["code"] == "rate_limited" and frames[-1]["retry_after"] > 0
    conn.receive('{"type": "ping", "id": "over"}')
    assert conn.closing == Close(close_codes.RATE_LIMITED, "too many frames")
    assert refused("frames") - before == 6


def test_the_server_reads_no_frame_larger_than_the_protocol_accepts() -> None:
    assert Settings().ws_max_size == MAX_FRAME_BYTES


class Unreachable:
    """A limiter and slot store whose Redis is down, each in its own way."""

    async def check(self, subject: str) -> None:
        raise RedisConnectionError("connection refused")

    async def claim(self, user_id: str, connection_id: str, *, cap: int, ttl: float) -> bool:
        raise RedisClusterException("no node serves the slot")

    async def renew(self, user_id: str, connection_id: str, *, ttl: float) -> None:
        raise TimeoutError

    async def release(self, user_id: str, connection_id: str) -> None:
        raise RedisConnectionError("connection reset")


async def test_the_opening_limits_let_connections_through_when_redis_is_unreachable() -> None:
    down = Unreachable()
    limits = SocketLimits(cast(RateLimiter, down), down, RealtimeOptions())
    assert await limits.handshake("192.0.2.1") is None
    assert await limits.claim("u1", "c1") is True
    await limits.renew("u1", "c1")
    await limits.release("u1", "c1")
