"""The use cases on in-memory stores: what they store, answer and announce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chat.domain.errors import ForbiddenError, NotFoundError, RateLimitedError
from chat.handlers.conversations import Conversations
from chat.handlers.messages import Messages
from chat.handlers.reading import Reading
from chat.handlers.typing import Typing
from contracts import chat as wire

from .fakes import MessagesView, Store

pytestmark = pytest.mark.unit


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store() -> Store:
    return Store()


def handlers(store: Store) -> tuple[Conversations, Messages, Reading, Typing]:
    view = MessagesView(store)
    return (
        Conversations(
            conversations=store,
            messages=view,
            reading=store,
            blocks=store,
            events=store,
            clock=clock,
        ),
        Messages(conversations=store, messages=view, blocks=store, events=store, clock=clock),
        Reading(conversations=store, reading=store, events=store),
        Typing(conversations=store, typing=store, throttle=store, blocks=store, events=store),
    )


async def new_group(convs: Conversations, *people: str) -> str:
    created = await convs.create(
        wire.CreateConversation(
            creator_id=people[0], kind="group", member_ids=list(people[1:]), title="t"
        )
    )
    return created.id


async def test_a_replayed_post_returns_the_original_and_is_announced_under_the_same_id(
    store: Store,
) -> None:
    convs, msgs, _, _ = handlers(store)
    conv = await new_group(convs, "a", "b")
    cmd = wire.PostMessage(sender_id="a", conversation_id=conv, client_msg_id="c1", body="hi")
    first, again = await msgs.post(cmd), await msgs.post(cmd)
    assert (first.replay, again.replay, again.message) == (False, True, first.message)
    posted = [(e, i) for e, i, _ in store.emitted if isinstance(e, wire.MessagePosted)]
    assert [i for _, i in posted] == [f"{first.message.id}.posted"] * 2


async def test_message_changes_are_published_by_the_store_and_appended_under_one_envelope(
    store: Store,
) -> None:
    # The store publishes the frame with its cache write; the stream entry reuses its envelope.
    convs, msgs, _, _ = handlers(store)
    conv = await new_group(convs, "a", "b")
    posted = await msgs.post(
        wire.PostMessage(sender_id="a", conversation_id=conv, client_msg_id="c1", body="hi")
    )
    await msgs.edit(wire.EditMessage(user_id="a", conversation_id=conv, seq=1, body="hey"))
    await msgs.delete(wire.DeleteMessage(user_id="a", conversation_id=conv, seq=1))
    emitted = zip(store.emitted, store.emitted_announced, strict=True)
    changes = [(e, i, a) for (e, i, _), a in emitted][1:]
    assert [type(e).__name__ for e, _, _ in changes] == [
        "MessagePosted",
        "MessageEdited",
        "MessageDeleted",
    ]
    assert [i for _, i, _ in changes] == [
        f"{posted.message.id}.posted",
        f"{posted.message.id}.v2",
        f"{posted.message.id}.deleted",
    ]
    assert [(m.version, a) for m, a in store.announced] == [
        (1, changes[0][2]),
        (2, changes[1][2]),
        (3, changes[2][2]),
    ]
    assert all(a is not None and a.channel == f"rt:{{conv:{conv}}}" for _, _, a in changes)
    assert all(a is not None and a.envelope.id == i for _, i, a in changes)


async def test_non_members_get_the_not_found_of_an_absent_conversation_for_reads_and_writes(
    store: Store,
) -> None:
    convs, msgs, reading, typing = handlers(store)
    conv = await new_group(convs, "a", "b")
    with pytest.raises(NotFoundError):
        await msgs.history(wire.GetHistory(user_id="z", conversation_id=conv))
    with pytest.raises(NotFoundError, match=f"^no conversation {conv}$"):
        await msgs.post(
            wire.PostMessage(sender_id="z", conversation_id=conv, client_msg_id="c", body="x")
        )
    with pytest.raises(NotFoundError, match=r"^no conversation missing$"):
        await msgs.post(
            wire.PostMessage(sender_id="z", conversation_id="missing", client_msg_id="c", body="x")
        )
    with pytest.raises(NotFoundError):
        await reading.mark_read(wire.MarkRead(user_id="z", conversation_id=conv, seq=1))
    with pytest.raises(NotFoundError):
        await convs.add_members(
            wire.AddMembers(user_id="z", conversation_id=conv, member_ids=["z"])
        )
    with pytest.raises(NotFoundError):
        await convs.leave(wire.LeaveConversation(user_id="z", conversation_id=conv))
    with pytest.raises(NotFoundError):
        await typing.who(wire.GetTyping(user_id="z", conversation_id=conv))
    with pytest.raises(NotFoundError):
        await msgs.history(wire.GetHistory(user_id="a", conversation_id="missing"))


async def test_a_read_change_is_announced_only_when_the_marker_moves(store: Store) -> None:
    convs, msgs, reading, _ = handlers(store)
    conv = await new_group(convs, "a", "b")
    for n in range(3):
        await msgs.post(
            wire.PostMessage(sender_id="a", conversation_id=conv, client_msg_id=f"c{n}", body="x")
        )
    marker = await reading.mark_read(wire.MarkRead(user_id="b", conversation_id=conv, seq=2))
    await reading.mark_read(wire.MarkRead(user_id="b", conversation_id=conv, seq=1))
    assert (marker.seq, marker.unread_count) == (2, 1)
    reads = [e for e, _, _ in store.emitted if isinstance(e, wire.ReadUpdated)]
    assert reads == [wire.ReadUpdated(conversation_id=conv, user_id="b", seq=2)]


async def test_typing_publishes_changes_only_and_never_emits_events(store: Store) -> None:
    convs, _, _, typing = handlers(store)
    conv = await new_group(convs, "a", "b")
    before = len(store.emitted)
    for flag in (True, True, False, False):
        await typing.set_typing(wire.SetTyping(user_id="a", conversation_id=conv, typing=flag))
    await typing.aclose()
    assert [f.typing for f in store.flashed] == [True, False]  # type: ignore[attr-defined]
    assert len(store.emitted) == before
    store.refuse_after = 0
    with pytest.raises(RateLimitedError):
        await typing.set_typing(wire.SetTyping(user_id="a", conversation_id=conv))


async def test_a_blocked_pair_gets_no_direct_conversation(store: Store) -> None:
    convs, _, _, _ = handlers(store)
    await store.block("b", "a")
    with pytest.raises(ForbiddenError):
        await convs.create(wire.CreateConversation(creator_id="a", kind="direct", member_ids=["b"]))


async def test_membership_changes_are_announced_to_the_member_too(store: Store) -> None:
    convs, _, _, _ = handlers(store)
    conv = await new_group(convs, "a", "b")
    await convs.add_members(wire.AddMembers(user_id="a", conversation_id=conv, member_ids=["c"]))
    await convs.remove_member(wire.RemoveMember(user_id="a", conversation_id=conv, member_id="c"))
    changes = [(type(e).__name__, users) for e, _, users in store.emitted[1:]]
    assert changes == [("MemberAdded", ["c"]), ("MemberRemoved", ["c"])]
