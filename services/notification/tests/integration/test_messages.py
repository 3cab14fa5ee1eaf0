"""Who gets told about a posted message, on the real cluster and real databases."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest

from contracts import realtime, registry, user
from contracts.base import utcnow
from contracts.notification import (
    GetConversationNotifications,
    ListNotifications,
    NotificationCreated,
    SetConversationNotifications,
    SetViewing,
    UpdateNotificationPreferences,
)
from notification.bootstrap import Service
from notification.store.redis_realtime import RedisRealtimeState
from notification.store.sql_notifications import delivery_rows
from shared.bus import Publisher, wire
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis
from shared.service.database import Database

pytestmark = pytest.mark.integration


async def listed(service: Service, user_id: str) -> list[Any]:
    page = await service.handlers.reading.list_notifications(ListNotifications(user_id=user_id))
    return page.items


async def pushed_to(redis: AnyRedis, user_id: str, post: Awaitable[object]) -> object:
    """The first real-time message ``user_id``'s devices get once ``post`` has run."""
    channel = registry.channel("rt.user").key(user_id)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as devices:
        await post
        return realtime.open_frame(await devices.get(timeout=10))[1]


async def test_an_offline_member_is_notified_and_an_online_viewing_member_is_not(
    service: Service,
    redis: AnyRedis,
    chat_facts: Any,
    user_publisher: Publisher,
    user_ids: Any,
    eventually: Any,
) -> None:
    alice, bob, carol = user_ids(3)
    conversation = await chat_facts.conversation(alice, bob, carol)
    await user_publisher.publish(user.PresenceChanged(user_id=carol, status="online"))
    await service.handlers.projections.set_viewing(
        SetViewing(user_id=carol, conversation_id=conversation)
    )
    state = RedisRealtimeState(redis)
    await eventually(lambda: state.viewers(conversation), lambda v: carol in v)
    pushed = await pushed_to(redis, bob, chat_facts.post(conversation, alice, "lunch?"))
    assert isinstance(pushed, NotificationCreated)
    assert pushed.notification.preview == "lunch?"
    assert pushed.unread_count == 1
    bobs = await eventually(lambda: listed(service, bob), lambda items: len(items) == 1)
    assert (bobs[0].kind, bobs[0].sender_id, bobs[0].conversation_id) == (
        "message",
        alice,
        conversation,
    )
    assert await listed(service, carol) == []
    assert await listed(service, alice) == []  # never the sender


async def test_going_offline_ends_viewing(redis: AnyRedis, user_ids: Any) -> None:
    carol, dave = user_ids(2)
    state = RedisRealtimeState(redis)
    conversation = f"conv-{carol}"
    for u in (carol, dave):
        await state.set_presence(u, online=True)
        await state.set_viewing(u, conversation)
    assert await state.viewers(conversation) == {carol, dave}
    await state.set_presence(carol, online=False)
    assert await state.viewers(conversation) == {dave}
    await state.set_viewing(dave, None)
    assert await state.viewers(conversation) == frozenset()


async def test_an_online_member_gets_the_in_app_frame_and_an_offline_one_the_outbound_too(
    service: Service,
    redis: AnyRedis,
    database: Database,
    chat_facts: Any,
    user_publisher: Publisher,
    user_ids: Any,
    eventually: Any,
) -> None:
    alice, bob, carol = user_ids(3)
    conversation = await chat_facts.conversation(alice, bob, carol)
    await user_publisher.publish(user.PresenceChanged(user_id=carol, status="online"))
    state = RedisRealtimeState(redis)
    await eventually(lambda: state.online([bob, carol]), lambda online: online == {carol})
    pushed = await pushed_to(redis, carol, chat_facts.post(conversation, alice, "standup?"))
    assert isinstance(pushed, NotificationCreated) and pushed.unread_count == 1
    [bobs] = await eventually(lambda: listed(service, bob), lambda items: len(items) == 1)
    rows = await eventually(
        lambda: delivery_rows(database.engine, bobs.id),
        lambda r: r.get("log", ("", 0))[0] == "delivered",
    )
    assert rows == {"log": ("delivered", 1)}  # away: the outbound channel, tracked
    assert await delivery_rows(database.engine, pushed.notification.id) == {}  # connected


async def test_a_grown_notification_is_announced_with_the_unchanged_badge(
    service: Service, redis: AnyRedis, chat_facts: Any, user_ids: Any
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    assert await service.handlers.reading.unread_count(bob) == 0  # the counter now exists
    channel = registry.channel("rt.user").key(bob)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as bobs_devices:
        frames = []
        for body in ("one", "two", "three"):
            await chat_facts.post(conversation, alice, body)
            frames.append(realtime.open_frame(await bobs_devices.get(timeout=10))[1])
    assert [(f.notification.count, f.unread_count) for f in frames] == [(1, 1), (2, 1), (3, 1)]
    assert len({f.notification.id for f in frames}) == 1


async def test_membership_changes_reach_the_next_message_at_once(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob, carol = user_ids(3)
    conversation = await chat_facts.conversation(alice, bob)
    await chat_facts.post(conversation, alice, "before")  # the members are cached now
    await eventually(lambda: listed(service, bob), lambda items: len(items) == 1)
    await chat_facts.join(conversation, carol, added_by=alice)
    await chat_facts.leave(conversation, bob)
    await chat_facts.post(conversation, alice, "after", mentions=[bob, carol])
    carols = await eventually(lambda: listed(service, carol), lambda items: len(items) == 2)
    assert sorted(n.kind for n in carols) == ["member_added", "mention"]
    bobs = await listed(service, bob)
    assert [(n.kind, n.preview) for n in bobs] == [("message", "before")]  # left: not told


async def test_a_muted_conversation_notifies_nobody_until_the_mute_ends(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    mute_ends = utcnow() + timedelta(seconds=1.5)
    await service.handlers.preferences.set_conversation(
        SetConversationNotifications(
            user_id=bob, conversation_id=conversation, muted_until=mute_ends
        )
    )
    await chat_facts.post(conversation, alice, "while muted", mentions=[bob])
    marker = await chat_facts.conversation(alice, bob)  # same handler path, processed after
    await chat_facts.post(marker, alice, "marker")
    await eventually(lambda: listed(service, bob), lambda items: len(items) == 1)
    assert [n.conversation_id for n in await listed(service, bob)] == [marker]
    await eventually(lambda: _now(), lambda now: now > mute_ends, timeout=5)
    await chat_facts.post(conversation, alice, "after the mute")
    items = await eventually(lambda: listed(service, bob), lambda items: len(items) == 2)
    assert items[0].preview == "after the mute"


async def test_a_conversations_mute_reads_back_until_it_is_lifted(
    service: Service, user_ids: Any
) -> None:
    (bob,) = user_ids(1)
    conversation, other = f"c-{bob}", f"o-{bob}"
    prefs = service.handlers.preferences
    ask = GetConversationNotifications(user_id=bob, conversation_id=conversation)
    assert (await prefs.get_conversation(ask)).muted_until is None  # never set: defaults
    until = utcnow() + timedelta(days=1)
    await prefs.set_conversation(
        SetConversationNotifications(
            user_id=bob, conversation_id=conversation, muted_until=until, level="mentions"
        )
    )
    got = await prefs.get_conversation(ask)
    assert (got.conversation_id, got.muted_until, got.level) == (conversation, until, "mentions")
    untouched = GetConversationNotifications(user_id=bob, conversation_id=other)
    assert (await prefs.get_conversation(untouched)).muted_until is None
    await prefs.set_conversation(
        SetConversationNotifications(user_id=bob, conversation_id=conversation)
    )
    lifted = await prefs.get_conversation(ask)
    assert (lifted.muted_until, lifted.level) == (None, None)


async def _now() -> Any:
    return utcnow()


async def test_a_mention_gets_through_mentions_only_mode(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    await service.handlers.preferences.update(
        UpdateNotificationPreferences(user_id=bob, level="mentions")
    )
    conversation = await chat_facts.conversation(alice, bob)
    await chat_facts.post(conversation, alice, "no mention here")
    await chat_facts.post(conversation, alice, "@bob look", mentions=[bob])
    items = await eventually(lambda: listed(service, bob), lambda items: len(items) >= 1)
    assert [(n.kind, n.preview) for n in items] == [("mention", "@bob look")]


async def test_a_blocked_sender_never_notifies(
    service: Service,
    chat_facts: Any,
    user_publisher: Publisher,
    user_ids: Any,
    eventually: Any,
) -> None:
    alice, bob, carol = user_ids(3)
    await user_publisher.publish(user.UserBlocked(user_id=bob, blocked_id=alice))
    conversation = await chat_facts.conversation(alice, bob, carol)
    await eventually(
        lambda: service.handlers.messages.load_audience(bob), lambda a: alice in a.blocked
    )
    await chat_facts.post(conversation, alice, "hi all", mentions=[bob])
    await eventually(lambda: listed(service, carol), lambda items: len(items) == 1)
    assert await listed(service, bob) == []


async def test_a_burst_of_ten_messages_makes_one_coalesced_notification(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    for i in range(10):
        await chat_facts.post(conversation, alice, f"message {i}")
    items = await eventually(
        lambda: listed(service, bob), lambda items: items and items[0].count == 10
    )
    assert len(items) == 1
    assert (items[0].preview, items[0].seq) == ("10 new messages", 10)
    assert await service.handlers.reading.unread_count(bob) == 1


async def test_a_redelivered_event_notifies_once(
    service: Service,
    chat_facts: Any,
    chat_publisher: Publisher,
    user_ids: Any,
    eventually: Any,
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    event = chat_facts.posted(conversation, alice, "once")
    envelope = chat_publisher.envelope_for(event)
    fields = wire.entry_fields(envelope, event)
    key = registry.stream("chat.events").key_for(conversation)
    await chat_publisher.append(key, fields)
    await chat_publisher.append(key, fields)  # the same message again (a redelivery)
    # The handler itself, called again with the same message id, changes nothing either.
    await eventually(lambda: listed(service, bob), lambda items: len(items) == 1)
    again = await service.handlers.messages.on_message_posted(event, envelope.id)
    assert again.created == [] and again.grown == []
    await chat_facts.post(conversation, alice, "marker")  # later on the same partition
    items = await eventually(
        lambda: listed(service, bob), lambda items: items and items[0].count == 2
    )
    assert len(items) == 1 and items[0].count == 2  # "once" + "marker", nothing counted twice
