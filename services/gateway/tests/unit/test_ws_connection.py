"""A connection's session without a socket: frames queued by policy, closes decided, debounce."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from contracts import chat, user
from contracts import gateway as gw_events
from contracts import notification as notify
from contracts.base import Command, Envelope, Message, new_message_id
from gateway.domain import close_codes, errors
from gateway.domain.clock import Clock
from gateway.handlers import realtime_lifecycle as lifecycle
from gateway.handlers.backend import BackendError, RequestContext
from gateway.handlers.realtime import Close, Connection, Identity
from gateway.handlers.realtime_frames import server_frame, shared_frame
from gateway.handlers.realtime_lifecycle import ConnectionFacts, Heartbeats, open_connection
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.handlers.subscriptions import ChannelHub

pytestmark = pytest.mark.unit


class FakeHub:
    def __init__(self) -> None:
        self.held: set[str] = set()

    async def acquire(self, channel: str, listener: object) -> None:
        self.held.add(channel)

    async def acquire_many(self, channels: list[str], listener: object) -> None:
        self.held.update(channels)

    async def release(self, channel: str, listener: object) -> None:
        self.held.discard(channel)


class FakeBackend:
    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.fail: Exception | None = None

    async def call(
        self,
        command: Command,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append(command)
        return self.answer(command)

    def answer(self, command: Command) -> Any:
        """The result of ``command`` (none by default)."""
        return None


def connection(**options: Any) -> tuple[Connection, FakeHub, FakeBackend]:
    hub, backend = FakeHub(), FakeBackend()
    ident = Identity(
        user_id="me", session_id="s1", device_id="d", connection_id="c", expires_at=2e9
    )
    conn = Connection(
        ident, hub=cast(ChannelHub, hub), backend=backend, options=RealtimeOptions(**options)
    )
    return conn, hub, backend


def deliver(conn: Connection, message: Message, *, envelope_id: str | None = None) -> None:
    env = Envelope(
        id=envelope_id or new_message_id(),
        type=message.TYPE,
        version=1,
        occurred_at=datetime.now(UTC),
        producer="chat",
    )
    conn.on_frame("rt:{conv:c1}", env, message)


def posted(seq: int) -> chat.MessagePosted:
    msg = chat.ChatMessage(
        id=f"m{seq}",
        conversation_id="c1",
        seq=seq,
        sender_id="x",
        body="hi",
        client_msg_id=f"k{seq}",
        created_at=datetime.now(UTC),
    )
    return chat.MessagePosted(conversation_id="c1", message=msg)


def typing() -> chat.TypingChanged:
    return chat.TypingChanged(conversation_id="c1", user_id="x", typing=True)


async def queued(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while len(conn._queue):
        item = await conn.next_outgoing()
        assert not isinstance(item, Close)
        out.append(json.loads(item.text))
    return out


async def test_typing_and_presence_are_dropped_while_messages_are_kept() -> None:
    conn, _, _ = connection(send_queue=8, droppable_limit=2)
    for seq in range(1, 4):
        deliver(conn, typing())
        deliver(conn, user.PresenceChanged(user_id="x", status="online"))
        deliver(conn, posted(seq))
    frames = await queued(conn)
    assert [f["message"]["seq"] for f in frames if f["type"] == "message.posted"] == [1, 2, 3]
    assert len([f for f in frames if f["type"] in ("typing", "presence")]) == 2
    assert conn.dropped == 4
    assert conn.closing is None


async def test_a_client_too_slow_for_essential_frames_is_closed_with_4008() -> None:
    conn, _, _ = connection(send_queue=3)
    for seq in range(1, 5):
        deliver(conn, posted(seq))
    assert await conn.next_outgoing() == Close(close_codes.SLOW_CONSUMER, "send queue full")


async def test_an_event_seen_on_two_channels_is_sent_once() -> None:
    conn, _, _ = connection()
    added = chat.MemberAdded(conversation_id="c9", user_id="other")
    deliver(conn, added, envelope_id="e1")
    deliver(conn, added, envelope_id="e1")
    assert [f["type"] for f in await queued(conn)] == ["member.added"]


async def test_typing_frames_are_debounced_and_a_stop_follows_a_start() -> None:
    conn, _, backend = connection(typing_interval=60)
    await conn.join("c1")
    for _ in range(3):
        conn.receive('{"type": "typing", "conversation_id": "c1"}')
    conn.receive('{"type": "typing", "conversation_id": "c1", "typing": false}')
    conn.receive('{"type": "typing", "conversation_id": "c1", "typing": false}')
    for task in list(conn._tasks):
        await task
    assert [(c.typing) for c in backend.sent if isinstance(c, chat.SetTyping)] == [True, False]


async def test_being_added_to_a_conversation_subscribes_its_channel() -> None:
    conn, hub, _ = connection()
    deliver(conn, chat.MemberAdded(conversation_id="c7", user_id="me"))
    for task in list(conn._tasks):
        await task
    assert "rt:{conv:c7}" in hub.held
    deliver(conn, chat.MemberRemoved(conversation_id="c7", user_id="me"))
    for task in list(conn._tasks):
        await task
    assert "rt:{conv:c7}" not in hub.held


async def settle(conn: Connection) -> None:
    while conn._tasks:  # a finished task leaves the set from its done callback
        await asyncio.gather(*conn._tasks)
        await asyncio.sleep(0)


async def test_view_tells_notification_only_of_a_held_conversation() -> None:
    conn, _, backend = connection()
    await conn.join("c1")
    conn.receive('{"type": "view", "conversation_id": "c2"}')  # not one of the user's
    conn.receive('{"type": "view", "conversation_id": "c1"}')
    await settle(conn)
    views = [c for c in backend.sent if isinstance(c, notify.SetViewing)]
    assert [(c.user_id, c.conversation_id) for c in views] == [("me", "c1")]
    assert conn.viewing == "c1"
    frames = await queued(conn)
    assert frames[0]["code"] == "not_found" and frames[0]["conversation_id"] == "c2"
    assert frames[1] == {"type": "view.ok", "conversation_id": "c1"}
    conn.receive('{"type": "view", "conversation_id": null}')
    await settle(conn)
    assert backend.sent[-1] == notify.SetViewing(user_id="me", conversation_id=None)
    assert conn.viewing is None


async def test_leaving_the_viewed_conversation_ends_the_view() -> None:
    conn, _, backend = connection()
    await conn.join("c1")
    conn.receive('{"type": "view", "conversation_id": "c1"}')
    await settle(conn)
    deliver(conn, chat.MemberRemoved(conversation_id="c1", user_id="me"))
    await settle(conn)
    assert conn.viewing is None
    assert backend.sent[-1] == notify.SetViewing(user_id="me", conversation_id=None)


async def test_a_recovery_that_fails_unexpectedly_releases_what_it_held() -> None:
    conn, _, backend = connection()
    await conn.join("c1")
    # The way a connection torn down under a write fails (not a Redis error).
    backend.fail = RuntimeError(
        "unable to perform operation on <TCPTransport>; the handler is closed"
    )
    deliver(conn, posted(1))
    deliver(conn, posted(3))  # a gap: 3 is held while 2 is fetched, and the fetch blows up
    for task in list(conn._recoveries.values()):
        await task
    frames = await queued(conn)
    assert [f["message"]["seq"] for f in frames if f["type"] == "message.posted"] == [1, 3]
    resumed = [f for f in frames if f["type"] == "resumed"]
    assert [(r["recovered"], r["reason"]) for r in resumed] == [(False, "unavailable")]
    assert conn._recoveries == {}


class Facts:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.gate: asyncio.Event | None = None

    async def publish(self, conn: Connection, kind: type[Message]) -> None:
        self.published.append(kind.TYPE)
        if self.gate is not None:
            await self.gate.wait()


async def test_heartbeats_publish_renew_and_refresh_the_viewing_until_stopped() -> None:
    conn, _, backend = connection(heartbeat_interval=0.02)
    facts, renewed = Facts(), []

    async def renew() -> None:
        renewed.append(time_now())

    conn.viewing = "c1"
    beats = Heartbeats(conn, cast(ConnectionFacts, facts), Clock(resolution=0.002), renew)
    for _ in range(400):  # a busy machine's timers run late
        if len(backend.sent) >= 3:
            break
        await asyncio.sleep(0.005)
    await beats.stop()
    count = len(facts.published)
    assert count >= 3
    assert set(facts.published) == {"gateway.connection_heartbeat"}
    assert len(renewed) == count
    assert [type(c).__name__ for c in backend.sent] == ["SetViewing"] * count
    await asyncio.sleep(0.08)
    assert len(facts.published) == count  # stopped: no further beat


async def test_stopping_the_heartbeats_cancels_a_beat_in_progress() -> None:
    conn, _, _ = connection(heartbeat_interval=0.01)
    facts, renewed = Facts(), []
    facts.gate = asyncio.Event()  # the publish never returns

    async def renew() -> None:
        renewed.append(1)

    beats = Heartbeats(conn, cast(ConnectionFacts, facts), Clock(resolution=0.002), renew)
    for _ in range(400):  # a busy machine's timers run late
        if facts.published:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert facts.published == ["gateway.connection_heartbeat"]  # one beat, stuck
    await asyncio.wait_for(beats.stop(), 1.0)
    await asyncio.sleep(0.05)
    assert renewed == [] and len(facts.published) == 1


def time_now() -> float:
    return asyncio.get_running_loop().time()


async def test_the_writer_stops_once_the_client_is_gone_and_a_decided_close_comes_first() -> None:
    conn, _, _ = connection()
    waiting = asyncio.create_task(conn.next_outgoing())
    await asyncio.sleep(0)
    conn.peer_gone()  # the reader saw the client close
    assert await asyncio.wait_for(waiting, 1.0) is None
    conn.close(close_codes.GOING_AWAY)
    assert await conn.next_outgoing() == Close(close_codes.GOING_AWAY, "going away")


class ListingBackend(FakeBackend):
    """Answers ``chat.list_conversation_ids`` after ``failures`` unanswered requests."""

    def __init__(self, failures: list[BackendError]) -> None:
        super().__init__()
        self.failures = failures
        self.asked = 0

    def answer(self, command: Command) -> Any:
        if isinstance(command, chat.ListConversationIds):
            self.asked += 1
            if self.failures:
                raise self.failures.pop(0)
            return chat.ConversationIds(ids=["c1", "c2"])
        return None


def listing_connection(backend: ListingBackend) -> tuple[Connection, FakeHub]:
    hub = FakeHub()
    ident = Identity(
        user_id="me", session_id="s1", device_id="d", connection_id="c", expires_at=2e9
    )
    conn = Connection(ident, hub=cast(ChannelHub, hub), backend=backend, options=RealtimeOptions())
    return conn, hub


def queued_frames(conn: Connection) -> list[dict[str, Any]]:
    frames = []
    while (item := conn._queue.pop()) is not None:
        frames.append(json.loads(item.text))
    return frames


async def test_a_connect_asks_again_for_the_conversations_chat_did_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycle, "LIST_RETRIES", (0.01, 0.01))
    late = BackendError(errors.UNAVAILABLE, "the service did not answer in time")
    backend = ListingBackend([late, late])
    conn, hub = listing_connection(backend)
    await open_connection(conn, cast(ConnectionFacts, Facts()))
    assert backend.asked == 3
    frames = queued_frames(conn)
    assert [f["type"] for f in frames] == ["ready"]
    assert frames[0]["conversations"] == ["c1", "c2"]
    assert {"rt:{conv:c1}", "rt:{conv:c2}"} <= hub.held


async def test_a_connect_gives_up_on_the_list_when_told_when_to_retry_or_after_the_last_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycle, "LIST_RETRIES", (0.01, 0.01))
    breaker = BackendError(errors.UNAVAILABLE, "the service is unavailable", retry_after=5.0)
    late = BackendError(errors.UNAVAILABLE, "the service did not answer in time")
    for failures, asked in (([breaker], 1), ([late, late, late], 3)):
        backend = ListingBackend(failures)
        conn, hub = listing_connection(backend)
        await open_connection(conn, cast(ConnectionFacts, Facts()))
        assert backend.asked == asked
        frames = queued_frames(conn)
        assert [f["type"] for f in frames] == ["error", "ready"]
        assert frames[0]["code"] == "unavailable"
        assert frames[1]["conversations"] == []
        assert not any(ch.startswith("rt:{conv:") for ch in hub.held)


def test_a_channel_message_is_encoded_once_for_every_socket_that_holds_the_channel() -> None:
    first, second = posted(1), posted(2)
    made = shared_frame(first)
    assert made is not None
    frame, text = made
    again = shared_frame(first)
    assert again is not None and again[1] is text and again[0] is frame  # not encoded again
    assert json.loads(text)["message"]["seq"] == 1
    other = shared_frame(second)
    assert other is not None and json.loads(other[1])["message"]["seq"] == 2
    unseen = gw_events.ConnectionOpened(
        user_id="x", device_id="d", connection_id="c", gateway_id="g"
    )  # a type clients never see
    assert server_frame(unseen) is None
    assert shared_frame(unseen) is None and shared_frame(unseen) is None


async def test_sockets_of_one_channel_share_the_frames_text() -> None:
    a, _, _ = connection()
    b, _, _ = connection()
    message = posted(1)
    env = Envelope.for_message(message, producer="chat")
    a.on_frame("rt:{conv:c1}", env, message)
    b.on_frame("rt:{conv:c1}", env, message)
    sent_a, sent_b = a._queue.pop(), b._queue.pop()
    assert sent_a is not None and sent_b is not None
    assert sent_a.text is sent_b.text
    assert json.loads(sent_a.text)["type"] == "message.posted"
