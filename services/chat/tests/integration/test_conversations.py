"""Conversations: direct pairs, groups and roles, membership on every read and write, blocks."""

from __future__ import annotations

import asyncio

import pytest

from chat.bootstrap import Chat
from chat.bootstrap import wire as wire_chat
from chat.domain.errors import ForbiddenError, GroupFullError, NotFoundError
from contracts import chat as wire
from contracts import user as user_wire
from shared.redis.client import AnyRedis
from shared.service.database import Database

from .scenario import group, post, uid

pytestmark = pytest.mark.integration


def direct(creator: str, other: str) -> wire.CreateConversation:
    return wire.CreateConversation(creator_id=creator, kind="direct", member_ids=[other])


async def test_a_pair_has_one_direct_conversation_whoever_creates_it(chat: Chat) -> None:
    a, b = uid(), uid()
    first = await chat.conversations.create(direct(a, b))
    second = await chat.conversations.create(direct(b, a))
    assert first.id == second.id and sorted(first.member_ids) == sorted([a, b])


async def test_a_direct_conversation_between_blocked_users_is_refused(chat: Chat) -> None:
    a, b = uid(), uid()
    await chat.blocks.blocked(user_wire.UserBlocked(user_id=b, blocked_id=a))
    await chat.blocks.blocked(user_wire.UserBlocked(user_id=b, blocked_id=a))  # redelivered
    with pytest.raises(ForbiddenError):
        await chat.conversations.create(direct(a, b))
    await chat.blocks.unblocked(user_wire.UserUnblocked(user_id=b, blocked_id=a))
    assert (await chat.conversations.create(direct(a, b))).kind == "direct"


async def test_a_non_member_can_neither_read_post_mark_read_nor_see_typing_and_is_told_not_found(
    chat: Chat,
) -> None:
    alice, stranger = uid(), uid()
    conv = await group(chat, alice, uid())
    await post(chat, conv, alice)
    with pytest.raises(NotFoundError):
        await chat.conversations.get(wire.GetConversation(user_id=stranger, conversation_id=conv))
    with pytest.raises(NotFoundError):
        await chat.messages.history(wire.GetHistory(user_id=stranger, conversation_id=conv))
    with pytest.raises(NotFoundError):
        await post(chat, conv, stranger)
    with pytest.raises(NotFoundError):
        await chat.reading.mark_read(wire.MarkRead(user_id=stranger, conversation_id=conv, seq=1))
    with pytest.raises(NotFoundError):
        await chat.typing.set_typing(wire.SetTyping(user_id=stranger, conversation_id=conv))
    await chat.typing.set_typing(wire.SetTyping(user_id=alice, conversation_id=conv))
    with pytest.raises(NotFoundError):
        await chat.typing.who(wire.GetTyping(user_id=stranger, conversation_id=conv))
    listed = await chat.conversations.list_mine(wire.ListConversations(user_id=stranger))
    assert listed.items == []


async def test_membership_changes_take_effect_at_once_despite_the_cache(chat: Chat) -> None:
    owner, admin, bob, carol = uid(), uid(), uid(), uid()
    conv = await group(chat, owner, bob)
    await post(chat, conv, bob)  # the membership is now cached
    await chat.conversations.add_members(
        wire.AddMembers(user_id=owner, conversation_id=conv, member_ids=[admin], role="admin")
    )
    added = await chat.conversations.add_members(
        wire.AddMembers(user_id=admin, conversation_id=conv, member_ids=[carol])
    )
    assert added.member_ids == [owner, bob, admin, carol]
    assert (await post(chat, conv, carol)).seq == 2
    with pytest.raises(ForbiddenError):
        await chat.conversations.remove_member(
            wire.RemoveMember(user_id=bob, conversation_id=conv, member_id=carol)
        )
    await chat.conversations.remove_member(
        wire.RemoveMember(user_id=admin, conversation_id=conv, member_id=carol)
    )
    with pytest.raises(NotFoundError):
        await post(chat, conv, carol)
    # the owner leaves: the admin becomes owner and may now remove anyone
    await chat.conversations.leave(wire.LeaveConversation(user_id=owner, conversation_id=conv))
    with pytest.raises(NotFoundError):
        await chat.conversations.get(wire.GetConversation(user_id=owner, conversation_id=conv))
    await chat.conversations.remove_member(
        wire.RemoveMember(user_id=admin, conversation_id=conv, member_id=bob)
    )
    left = await chat.conversations.get(wire.GetConversation(user_id=admin, conversation_id=conv))
    assert left.member_ids == [admin]


async def test_the_member_limit_holds(chat: Chat) -> None:
    owner = uid()
    conv = await group(chat, owner, *[uid() for _ in range(6)])
    await chat.conversations.add_members(
        wire.AddMembers(user_id=owner, conversation_id=conv, member_ids=[uid()])
    )
    with pytest.raises(GroupFullError):
        await chat.conversations.add_members(
            wire.AddMembers(user_id=owner, conversation_id=conv, member_ids=[uid()])
        )


async def test_my_conversations_come_newest_first_with_last_message_and_unread(
    chat: Chat,
) -> None:
    me, other = uid(), uid()
    quiet = await group(chat, me, other)
    busy = await group(chat, me, other)
    await post(chat, quiet, other, "old")
    await post(chat, busy, other, "one")
    await post(chat, busy, other, "two")
    await post(chat, busy, me, "mine")
    page = await chat.conversations.list_mine(wire.ListConversations(user_id=me, limit=1))
    assert [c.id for c in page.items] == [busy]
    first = page.items[0]
    assert first.last_message is not None and first.last_message.body == "mine"
    assert (first.last_seq, first.unread_count) == (3, 2)
    rest = await chat.conversations.list_mine(
        wire.ListConversations(user_id=me, cursor=page.next, limit=10)
    )
    assert [(c.id, c.unread_count) for c in rest.items] == [(quiet, 1)]
    assert rest.next is None


async def test_a_member_removed_on_one_instance_cannot_post_through_another(
    chat: Chat, redis: AnyRedis, database: Database
) -> None:
    # Both instances keep conversations in process (near-cache); the removal's invalidation
    # must reach the other instance's copy, not only the Redis entry.
    other = wire_chat(redis, database.engine, member_limit=8)
    await chat.start()
    await other.start()
    try:
        owner, bob = uid(), uid()
        conv = await group(chat, owner, bob)
        await post(other, conv, bob)  # the other instance now holds the membership in memory
        await post(other, conv, bob)  # ... and answers this one from it
        await chat.conversations.remove_member(
            wire.RemoveMember(user_id=owner, conversation_id=conv, member_id=bob)
        )
        async with asyncio.timeout(2):  # the invalidation travels on pub/sub
            while True:
                try:
                    await post(other, conv, bob)
                except NotFoundError:
                    break
                await asyncio.sleep(0.01)
        # ... and once it arrived the other instance never admits bob again
        with pytest.raises(NotFoundError):
            await post(other, conv, bob)
    finally:
        await other.aclose()


async def test_my_conversation_ids_come_newest_first_and_only_mine(chat: Chat) -> None:
    me, other, stranger = uid(), uid(), uid()
    quiet = await group(chat, me, other)
    busy = await group(chat, me, other)
    await group(chat, other, stranger)  # not mine
    await post(chat, busy, other, "news")
    ids = await chat.conversations.list_ids(wire.ListConversationIds(user_id=me))
    assert ids.ids == [busy, quiet]
    first = await chat.conversations.list_ids(wire.ListConversationIds(user_id=me, limit=1))
    assert first.ids == [busy]
    none = await chat.conversations.list_ids(wire.ListConversationIds(user_id=uid()))
    assert none.ids == []
