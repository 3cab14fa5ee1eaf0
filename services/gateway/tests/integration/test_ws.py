"""The WebSocket /ws against a real gateway on uvicorn, a real cluster and stand-in services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from contracts import chat, user
from contracts import gateway as gw_events
from gateway.domain import close_codes
from gateway.handlers.realtime_options import RealtimeOptions

from .ws_harness import Gateway, message, receive, running_gateway, uid

pytestmark = pytest.mark.integration

OPTIONS = RealtimeOptions(
    recovery_bound=30, typing_interval=0.5, auth_timeout=0.5, heartbeat_interval=60.0
)


@pytest.fixture(scope="module")
async def gateway(redis_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(redis_url, OPTIONS) as gw:
        yield gw


async def connect(
    gw: Gateway, user_id: str, *convs: str, session_id: str | None = None
) -> websockets.ClientConnection:
    """A connected, ready client of ``user_id`` (a member of ``convs``)."""
    gw.services.conversations[user_id] = list(convs)
    ws = await websockets.connect(gw.ws_url(gw.mint.token(user_id, session_id=session_id)))
    ready = await receive(ws)
    assert ready["type"] == "ready"
    assert sorted(ready["conversations"]) == sorted(convs)
    return ws


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    """The close code, once the server closed (frames before it are passed over)."""
    with pytest.raises(ConnectionClosed):
        await _drain(ws)
    return ws.close_code


async def _drain(ws: websockets.ClientConnection) -> None:
    for _ in range(10):
        await asyncio.wait_for(ws.recv(), 5)


async def test_posted_messages_arrive_in_order_with_the_whole_message_object(
    gateway: Gateway,
) -> None:
    me, conv = uid(), uid("c")
    async with await connect(gateway, me, conv) as ws:
        for seq in range(1, 6):
            await gateway.publish(
                "rt.conv",
                conv,
                chat.MessagePosted(conversation_id=conv, message=message(conv, seq)),
            )
        frames = [await receive(ws) for _ in range(5)]
    assert [f["type"] for f in frames] == ["message.posted"] * 5
    assert [f["message"]["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert set(frames[0]["message"]) == {
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "body",
        "client_msg_id",
        "mentions",
        "created_at",
        "edited_at",
        "deleted",
    }
    assert frames[0]["message"]["mentions"] == [] and frames[0]["message"]["deleted"] is False


async def test_ready_lists_the_users_conversations_with_one_request_to_chat(
    gateway: Gateway,
) -> None:
    me, convs = uid(), [uid("c") for _ in range(150)]  # more than one page of summaries
    async with await connect(gateway, me, *convs):
        pass
    asked = [c for c in gateway.services.listings if getattr(c, "user_id", None) == me]
    assert len(asked) == 1 and isinstance(asked[0], chat.ListConversationIds)
    assert asked[0].limit == gateway.app.state.realtime.options.max_conversations


async def test_an_auth_first_frame_authenticates_a_connection_without_a_token(
    gateway: Gateway,
) -> None:
    me = uid()
    async with websockets.connect(gateway.ws_url()) as ws:
        await ws.send(f'{{"type": "auth", "token": "{gateway.mint.token(me)}"}}')
        ready = await receive(ws)
    assert ready["type"] == "ready" and ready["user_id"] == me


@pytest.mark.parametrize(
    ("first_frame", "token"),
    [(None, None), ('{"type": "ping"}', None), ("not json", None), (None, "not-a-jwt")],
    ids=["no-auth-frame-in-time", "wrong-first-frame", "garbage", "forged-token"],
)
async def test_unauthenticated_connections_close_with_4001(
    gateway: Gateway, first_frame: str | None, token: str | None
) -> None:
    async with websockets.connect(gateway.ws_url(token)) as ws:
        if first_frame is not None:
            await ws.send(first_frame)
        assert await closed_with(ws) == close_codes.UNAUTHENTICATED


async def test_an_expired_token_closes_with_4002_so_the_client_refreshes(gateway: Gateway) -> None:
    async with websockets.connect(gateway.ws_url(gateway.mint.token(uid(), ttl=-60))) as ws:
        assert await closed_with(ws) == close_codes.TOKEN_EXPIRED


async def test_a_token_expiring_while_connected_closes_with_4002(gateway: Gateway) -> None:
    me = uid()
    gateway.services.conversations[me] = []
    async with websockets.connect(gateway.ws_url(gateway.mint.token(me, ttl=1.5))) as ws:
        assert (await receive(ws))["type"] == "ready"
        assert await closed_with(ws) == close_codes.TOKEN_EXPIRED


async def test_a_revoked_sessions_socket_is_closed_with_4003(gateway: Gateway) -> None:
    me, session = uid(), uid("s")
    async with await connect(gateway, me, session_id=session) as ws:
        await gateway.deps.tokens.revoke(me, session, tokens_expire_at=0)
        assert await closed_with(ws) == close_codes.SESSION_REVOKED


async def test_malformed_frames_get_error_frames_and_the_connection_stays_up(
    gateway: Gateway,
) -> None:
    async with await connect(gateway, uid()) as ws:
        for bad in ["{nope", "[1, 2]", '{"type": "dance"}', '{"type": "read", "seq": -1}']:
            await ws.send(bad)
        errors = [await receive(ws) for _ in range(4)]
        await ws.send('{"type": "ping", "id": "p1"}')
        pong = await receive(ws)
    assert [e["type"] for e in errors] == ["error"] * 4
    assert [e["code"] for e in errors] == [
        "malformed_frame",
        "malformed_frame",
        "unknown_frame_type",
        "invalid",
    ]
    assert all(e["message"] for e in errors)
    assert pong == {"type": "pong", "id": "p1"}


async def test_resume_delivers_exactly_the_missed_messages_in_order(gateway: Gateway) -> None:
    me, conv = uid(), uid("c")
    gateway.services.add_messages(conv, 25)
    async with await connect(gateway, me, conv) as ws:
        await ws.send(f'{{"type": "resume", "conversations": {{"{conv}": 5}}}}')
        frames = [await receive(ws) for _ in range(21)]
    assert [f["message"]["seq"] for f in frames[:20]] == list(range(6, 26))
    assert frames[20] == {
        "type": "resumed",
        "conversation_id": conv,
        "recovered": True,
        "count": 20,
        "last_seq": 25,
        "reason": "resume",
    }


async def test_resume_past_the_bound_says_recovered_false_and_sends_nothing(
    gateway: Gateway,
) -> None:
    me, conv = uid(), uid("c")
    gateway.services.add_messages(conv, 50)
    async with await connect(gateway, me, conv) as ws:
        await ws.send(f'{{"type": "resume", "conversations": {{"{conv}": 5}}}}')
        frame = await receive(ws)
        # Live delivery goes on from the head.
        await gateway.publish(
            "rt.conv", conv, chat.MessagePosted(conversation_id=conv, message=message(conv, 51))
        )
        live = await receive(ws)
    assert frame["type"] == "resumed" and frame["recovered"] is False and frame["count"] == 0
    assert live["message"]["seq"] == 51


async def test_resume_of_a_conversation_the_user_is_not_in_is_refused(gateway: Gateway) -> None:
    async with await connect(gateway, uid()) as ws:
        await ws.send('{"type": "resume", "conversations": {"someone-elses": 3}}')
        frame = await receive(ws)
    assert frame["type"] == "error" and frame["code"] == "not_found"
    assert frame["conversation_id"] == "someone-elses"


async def test_a_gap_seen_on_live_delivery_is_filled_from_history(gateway: Gateway) -> None:
    me, conv = uid(), uid("c")
    gateway.services.add_messages(conv, 4)
    async with await connect(gateway, me, conv) as ws:
        for seq in (1, 4):  # 2 and 3 were lost on the channel
            await gateway.publish(
                "rt.conv",
                conv,
                chat.MessagePosted(conversation_id=conv, message=message(conv, seq)),
            )
        frames = [await receive(ws) for _ in range(5)]
    assert [f["message"]["seq"] for f in frames[:4]] == [1, 2, 3, 4]
    assert frames[4]["type"] == "resumed" and frames[4]["reason"] == "gap"


async def test_typing_frames_become_debounced_set_typing_commands(gateway: Gateway) -> None:
    me, conv = uid(), uid("c")
    async with await connect(gateway, me, conv) as ws:
        for _ in range(5):
            await ws.send(f'{{"type": "typing", "conversation_id": "{conv}"}}')
        await ws.send(f'{{"type": "read", "conversation_id": "{conv}", "seq": 0}}')
        assert (await receive(ws))["type"] == "read.ok"  # the commands before it went out too
    typing = [
        c
        for c in gateway.services.calls
        if isinstance(c, chat.SetTyping) and c.conversation_id == conv
    ]
    assert len(typing) == 1 and typing[0].user_id == me and typing[0].typing is True


async def test_a_read_frame_becomes_mark_read_and_is_acknowledged(gateway: Gateway) -> None:
    me, conv = uid(), uid("c")
    gateway.services.add_messages(conv, 10)
    async with await connect(gateway, me, conv) as ws:
        await ws.send(f'{{"type": "read", "conversation_id": "{conv}", "seq": 7}}')
        ack = await receive(ws)
    assert ack == {"type": "read.ok", "conversation_id": conv, "seq": 7, "unread_count": 3}


async def test_membership_changes_on_the_personal_channel_follow_the_conversation(
    gateway: Gateway,
) -> None:
    me, conv = uid(), uid("c")
    async with await connect(gateway, me) as ws:
        await gateway.publish("rt.user", me, chat.MemberAdded(conversation_id=conv, user_id=me))
        assert (await receive(ws))["type"] == "member.added"
        channel = f"rt:{{conv:{conv}}}"
        for _ in range(100):
            if gateway.app.state.realtime.hub.is_live(channel):
                break
            await asyncio.sleep(0.02)
        await gateway.publish(
            "rt.conv", conv, chat.MessagePosted(conversation_id=conv, message=message(conv, 1))
        )
        assert (await receive(ws))["message"]["conversation_id"] == conv
        await gateway.publish("rt.user", me, chat.MemberRemoved(conversation_id=conv, user_id=me))
        assert (await receive(ws))["type"] == "member.removed"
        for _ in range(100):
            if not gateway.app.state.realtime.hub.refcount(channel):
                break
            await asyncio.sleep(0.02)
    assert gateway.app.state.realtime.hub.refcount(channel) == 0


async def test_presence_and_notifications_arrive_from_the_personal_channel(
    gateway: Gateway,
) -> None:
    me, friend = uid(), uid()
    async with await connect(gateway, me) as ws:
        await gateway.publish(
            "rt.user", me, user.PresenceChanged(user_id=friend, status="online"), droppable=True
        )
        frame = await receive(ws)
    assert frame == {"type": "presence", "user_id": friend, "status": "online", "last_seen": None}


async def test_connection_opened_and_closed_are_reported_for_presence(gateway: Gateway) -> None:
    me = uid()
    async with await connect(gateway, me):
        pass
    facts: list[object] = []
    for _ in range(200):
        facts = [c for c in gateway.services.calls if getattr(c, "user_id", None) == me]
        if len(facts) == 2:
            break
        await asyncio.sleep(0.02)
    assert [type(f) for f in facts] == [gw_events.ConnectionOpened, gw_events.ConnectionClosed]
    assert facts[0].connection_id == facts[1].connection_id  # type: ignore[attr-defined]


async def test_only_the_ws_path_is_answered_ahead_of_the_router(gateway: Gateway) -> None:
    """``/ws`` is served before the middleware stack; any other WebSocket path still reaches
    the router, which refuses it."""
    token = gateway.mint.token(uid("u"))
    for path in ("/ws/", "/wsx", "/other"):
        url = gateway.ws_url(token).replace("/ws?", f"{path}?")
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 403
    async with await websockets.connect(gateway.ws_url(token)) as ws:
        assert (await receive(ws))["type"] == "ready"
