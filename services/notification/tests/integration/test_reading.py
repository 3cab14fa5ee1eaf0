"""Read status on the real cluster: reading in chat clears notifications and the badge."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from contracts.notification import (
    GetUnreadCount,
    ListNotifications,
    MarkNotificationsRead,
    NotificationList,
    UnreadCount,
)
from notification.bootstrap import Service
from notification.store.redis_keys import badge_key
from shared.bus import Publisher, Requester
from shared.redis.client import AnyRedis

pytestmark = pytest.mark.integration


async def unread(service: Service, user_id: str) -> int:
    return await service.handlers.reading.unread_count(user_id)


async def test_reading_the_conversation_in_chat_clears_its_notifications_and_the_badge(
    service: Service, redis: AnyRedis, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    first = await chat_facts.conversation(alice, bob)
    second = await chat_facts.conversation(alice, bob)
    await chat_facts.post(first, alice, "one", mentions=[bob])
    last = await chat_facts.post(first, alice, "two")
    await chat_facts.post(second, alice, "elsewhere")
    await eventually(lambda: unread(service, bob), lambda n: n == 3)
    await chat_facts.read(first, bob, last.message.seq)
    await eventually(lambda: unread(service, bob), lambda n: n == 1)
    page = await service.handlers.reading.list_notifications(ListNotifications(user_id=bob))
    assert {(n.conversation_id, n.read) for n in page.items} == {
        (first, True),
        (second, False),
    }
    # The counter in Redis agrees with the database after it is dropped and reloaded.
    await redis.delete(badge_key(bob))
    assert await unread(service, bob) == 1


async def test_reading_up_to_an_earlier_seq_leaves_later_notifications_unread(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    early = await chat_facts.post(conversation, alice, "@bob one", mentions=[bob])
    await chat_facts.post(conversation, alice, "@bob two", mentions=[bob])
    await eventually(lambda: unread(service, bob), lambda n: n == 2)
    await chat_facts.read(conversation, bob, early.message.seq)
    await eventually(lambda: unread(service, bob), lambda n: n == 1)


async def test_commands_list_newest_first_with_pages_and_mark_everything_read(
    service: Service, redis: AnyRedis, chat_facts: Any, user_ids: Any, eventually: Any
) -> None:
    alice, bob = user_ids(2)
    conversation = await chat_facts.conversation(alice, bob)
    for i in range(3):
        await chat_facts.post(conversation, alice, f"@bob {i}", mentions=[bob])
    await eventually(lambda: unread(service, bob), lambda n: n == 3)
    publisher = Publisher(redis, producer="gateway")
    async with Requester(redis, publisher, instance_id=f"gw-{secrets.token_hex(4)}") as requester:

        async def ask(command: Any) -> Any:
            reply = await requester.request(command, timeout=5.0)
            assert reply.ok, reply.error
            return reply.result

        first: NotificationList = await ask(ListNotifications(user_id=bob, limit=2))
        assert [n.preview for n in first.items] == ["@bob 2", "@bob 1"]
        assert first.next is not None
        rest: NotificationList = await ask(
            ListNotifications(user_id=bob, limit=2, cursor=first.next)
        )
        bad = await requester.request(ListNotifications(user_id=bob, cursor="not-ours"))
        assert not bad.ok and bad.error is not None and bad.error.code == "invalid"
        assert [n.preview for n in rest.items] == ["@bob 0"] and rest.next is None
        one = first.items[0].id
        after_one: UnreadCount = await ask(MarkNotificationsRead(user_id=bob, ids=[one]))
        assert after_one.count == 2
        everything: UnreadCount = await ask(MarkNotificationsRead(user_id=bob, all=True))
        assert everything.count == 0
        badge: UnreadCount = await ask(GetUnreadCount(user_id=bob))
        assert badge.count == 0
    await publisher.aclose()
