"""Real-time: every change on chat.events and on the conversation channel; typing only on the
channel, expiring on its own and rate-limited per user."""

from __future__ import annotations

from typing import Any

import pytest

from chat.bootstrap import Chat
from chat.domain.errors import RateLimitedError
from contracts import chat as wire
from contracts import realtime, registry
from contracts.base import Envelope
from shared.bus import wire as bus_wire
from shared.pubsub import PubSub, Subscription
from shared.redis.client import AnyRedis

from .scenario import group, post, uid

pytestmark = pytest.mark.integration


async def stream_envelopes(redis: AnyRedis, conv: str) -> list[Envelope]:
    """The envelopes of the latest entries of the conversation's chat.events partition."""
    key = registry.stream("chat.events").key_for(conv)
    entries: Any = await redis.xrevrange(key, count=500)
    return [bus_wire.decode_envelope(fields) for _, fields in entries]


async def frames(
    sub: Subscription[realtime.Frame], n: int, envelopes: list[Envelope] | None = None
) -> list[object]:
    out: list[object] = []
    for _ in range(n):
        envelope, message = realtime.open_frame(await sub.get(timeout=3))
        out.append(message)
        if envelopes is not None:
            envelopes.append(envelope)
    return out


async def test_posts_edits_deletes_and_reads_reach_the_stream_and_the_channel(
    chat: Chat, redis: AnyRedis
) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    channel = registry.channel("rt.conv").key(conv)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as sub:
        m = await post(chat, conv, alice, "hello")
        await chat.messages.edit(
            wire.EditMessage(user_id=alice, conversation_id=conv, seq=m.seq, body="hello!")
        )
        await chat.messages.delete(wire.DeleteMessage(user_id=alice, conversation_id=conv, seq=1))
        await chat.reading.mark_read(wire.MarkRead(user_id=bob, conversation_id=conv, seq=1))
        await chat.conversations.add_members(
            wire.AddMembers(user_id=alice, conversation_id=conv, member_ids=[uid()])
        )
        seen: list[Envelope] = []
        got = await frames(sub, 5, seen)
    assert [type(g).__name__ for g in got] == [
        "MessagePosted",
        "MessageEdited",
        "MessageDeleted",
        "ReadUpdated",
        "MemberAdded",
    ]
    assert isinstance(got[0], wire.MessagePosted) and got[0].message.body == "hello"

    mine = [e for e in await stream_envelopes(redis, conv) if e.id.startswith(m.id)]
    assert sorted(e.type for e in mine) == [
        "chat.message_deleted",
        "chat.message_edited",
        "chat.message_posted",
    ]
    # The frames (published by the cache-write script) carry the stream entries' own envelopes.
    assert sorted(seen[:3], key=lambda e: e.type) == sorted(mine, key=lambda e: e.type)


async def test_a_replayed_post_is_announced_again_under_the_same_envelope_id(
    chat: Chat, redis: AnyRedis
) -> None:
    alice = uid()
    conv = await group(chat, alice, uid())
    cmd = wire.PostMessage(sender_id=alice, conversation_id=conv, client_msg_id=uid(), body="x")
    first = await chat.messages.post(cmd)
    await chat.messages.post(cmd)
    ids = [e.id for e in await stream_envelopes(redis, conv)]
    # consumers deduplicate by envelope id, so the second announcement is a no-op for them
    assert ids.count(f"{first.message.id}.posted") == 2


async def test_typing_is_published_as_start_and_stops_on_its_own(
    chat: Chat, redis: AnyRedis
) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    channel = registry.channel("rt.conv").key(conv)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as sub:
        await chat.typing.set_typing(wire.SetTyping(user_id=alice, conversation_id=conv))
        await chat.typing.set_typing(wire.SetTyping(user_id=alice, conversation_id=conv))
        who = await chat.typing.who(wire.GetTyping(user_id=bob, conversation_id=conv))
        assert who.user_ids == [alice]
        started, stopped = await frames(sub, 2)
    assert started == wire.TypingChanged(conversation_id=conv, user_id=alice, typing=True)
    assert stopped == wire.TypingChanged(conversation_id=conv, user_id=alice, typing=False)
    assert (await chat.typing.who(wire.GetTyping(user_id=bob, conversation_id=conv))).user_ids == []
    # typing never goes into the event stream
    types = {e.type for e in await stream_envelopes(redis, conv)}
    assert "chat.typing_changed" not in types


async def test_an_explicit_stop_is_published_once(chat: Chat, redis: AnyRedis) -> None:
    alice = uid()
    conv = await group(chat, alice, uid())
    channel = registry.channel("rt.conv").key(conv)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as sub:
        await chat.typing.set_typing(wire.SetTyping(user_id=alice, conversation_id=conv))
        await chat.typing.set_typing(
            wire.SetTyping(user_id=alice, conversation_id=conv, typing=False)
        )
        await chat.typing.set_typing(
            wire.SetTyping(user_id=alice, conversation_id=conv, typing=False)
        )
        got = await frames(sub, 2)
        assert [g.typing for g in got] == [True, False]  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            await sub.get(timeout=1.0)  # no second stop, and no timer-made stop either


async def test_typing_frames_are_rate_limited_per_user(chat: Chat) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    frame = wire.SetTyping(user_id=alice, conversation_id=conv)
    refused: list[RateLimitedError] = []
    for _ in range(30):
        try:
            await chat.typing.set_typing(frame)
        except RateLimitedError as e:
            refused.append(e)
    assert 0 < len(refused) < 30
    assert all(e.retry_after is not None and e.retry_after > 0 for e in refused)
    await chat.typing.set_typing(wire.SetTyping(user_id=bob, conversation_id=conv))
