"""Read markers move forward only; unread counts are exact through edits, deletes, several
readers and late joiners."""

from __future__ import annotations

import pytest

from chat.bootstrap import Chat
from chat.domain.errors import NotFoundError
from contracts import chat as wire

from .scenario import group, post, uid

pytestmark = pytest.mark.integration


async def unread(chat: Chat, user: str, conv: str) -> int:
    counts = await chat.reading.unread(wire.GetUnread(user_id=user))
    per = {i.conversation_id: i.unread_count for i in counts.items}
    assert counts.total == sum(per.values())
    return per.get(conv, 0)


async def mark(chat: Chat, user: str, conv: str, seq: int) -> wire.ReadMarker:
    return await chat.reading.mark_read(wire.MarkRead(user_id=user, conversation_id=conv, seq=seq))


async def test_unread_counts_are_exact_through_a_scripted_scenario(chat: Chat) -> None:
    alice, bob, carol, dave = uid(), uid(), uid(), uid()
    conv = await group(chat, alice, bob, carol)
    for body in ("a1", "a2", "a3"):
        await post(chat, conv, alice, body)  # seq 1..3
    await post(chat, conv, bob, "b1")  # seq 4
    assert [await unread(chat, u, conv) for u in (alice, bob, carol)] == [1, 3, 4]

    # an edit changes nothing; a delete removes the message from every unread count
    await chat.messages.edit(wire.EditMessage(user_id=alice, conversation_id=conv, seq=2, body="x"))
    await chat.messages.delete(wire.DeleteMessage(user_id=alice, conversation_id=conv, seq=3))
    assert [await unread(chat, u, conv) for u in (alice, bob, carol)] == [1, 2, 3]

    # bob reads up to 2; a marker never moves back, and never past the last message
    assert (await mark(chat, bob, conv, 2)).unread_count == 0
    back = await mark(chat, bob, conv, 1)
    assert (back.seq, back.unread_count) == (2, 0)
    assert (await mark(chat, carol, conv, 999)).seq == 4
    assert await unread(chat, carol, conv) == 0

    # a late joiner starts at the last message: older history is not unread
    await chat.conversations.add_members(
        wire.AddMembers(user_id=alice, conversation_id=conv, member_ids=[dave])
    )
    assert await unread(chat, dave, conv) == 0
    await post(chat, conv, carol, "c1")  # seq 5
    await post(chat, conv, dave, "d1")  # seq 6
    assert [await unread(chat, u, conv) for u in (alice, bob, carol, dave)] == [3, 2, 1, 1]
    await chat.messages.delete(wire.DeleteMessage(user_id=dave, conversation_id=conv, seq=6))
    assert [await unread(chat, u, conv) for u in (alice, bob, carol, dave)] == [2, 1, 0, 1]

    # the count in "my conversations" and in get agrees with the per-user count
    mine = await chat.conversations.list_mine(wire.ListConversations(user_id=alice))
    got = await chat.conversations.get(wire.GetConversation(user_id=alice, conversation_id=conv))
    assert [c.unread_count for c in mine.items if c.id == conv] == [2] == [got.unread_count]


async def test_total_unread_sums_every_conversation(chat: Chat) -> None:
    me, other = uid(), uid()
    one, two = await group(chat, me, other), await group(chat, me, other)
    await post(chat, one, other)
    for _ in range(3):
        await post(chat, two, other)
    counts = await chat.reading.unread(wire.GetUnread(user_id=me))
    assert counts.total == 4
    await mark(chat, me, two, 3)
    assert (await chat.reading.unread(wire.GetUnread(user_id=me))).total == 1


async def test_every_members_read_marker_is_listed_to_members_only(chat: Chat) -> None:
    alice, bob, carol, stranger = uid(), uid(), uid(), uid()
    conv = await group(chat, alice, bob, carol)
    for body in ("a1", "a2", "a3"):
        await post(chat, conv, alice, body)
    await mark(chat, bob, conv, 2)

    ask = wire.GetReadMarkers(user_id=carol, conversation_id=conv)
    listed = await chat.reading.read_markers(ask)
    assert listed.conversation_id == conv
    assert {m.user_id: m.seq for m in listed.items} == {alice: 0, bob: 2, carol: 0}

    with pytest.raises(NotFoundError):
        await chat.reading.read_markers(wire.GetReadMarkers(user_id=stranger, conversation_id=conv))
