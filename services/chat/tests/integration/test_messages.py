"""Posting, idempotency, sequence numbers, edits, deletes and the recent-message cache."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from chat.bootstrap import Chat
from chat.bootstrap import wire as wire_chat
from chat.domain.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from chat.domain.messages import Draft
from chat.store.protocols import Announcement
from chat.store.sql_messages import SqlMessages
from chat.store.tables import messages
from contracts import chat as wire
from shared.redis.client import AnyRedis
from shared.service.database import Database

from .scenario import group, post, uid

pytestmark = pytest.mark.integration


async def stored_count(database: Database, conv: str) -> int:
    async with database.engine.connect() as conn:
        query = select(func.count()).where(messages.c.conversation_id == conv)
        return int(await conn.scalar(query) or 0)


async def test_the_same_client_message_id_posted_ten_times_at_once_creates_one_message(
    chat: Chat, database: Database
) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    cmd = wire.PostMessage(sender_id=alice, conversation_id=conv, client_msg_id=uid("c"), body="x")
    results = await asyncio.gather(*(chat.messages.post(cmd) for _ in range(10)))
    assert len({r.message.id for r in results}) == 1
    assert sorted(r.replay for r in results) == [False] + [True] * 9
    assert results[0].message.seq == 1
    assert await stored_count(database, conv) == 1
    # The number a losing attempt took was given back: the next post gets 2.
    assert (await post(chat, conv, bob)).seq == 2


async def test_four_concurrent_posters_get_gapless_unique_sequence_numbers(chat: Chat) -> None:
    people = [uid() for _ in range(4)]
    conv = await group(chat, *people)

    async def poster(who: str) -> list[int]:
        return [(await post(chat, conv, who, f"{who} {i}")).seq for i in range(8)]

    seqs = await asyncio.gather(*(poster(p) for p in people))
    flat = sorted(s for one in seqs for s in one)
    assert flat == list(range(1, 33))
    for one in seqs:
        assert one == sorted(one)  # each poster sees its own messages in order
    history = await chat.messages.history(
        wire.GetHistory(user_id=people[0], conversation_id=conv, limit=100)
    )
    assert [m.seq for m in history.items] == list(range(1, 33))


async def test_a_retry_after_a_restart_returns_the_original(
    chat: Chat, redis: AnyRedis, database: Database
) -> None:
    alice = uid()
    conv = await group(chat, alice, uid())
    cmd = wire.PostMessage(sender_id=alice, conversation_id=conv, client_msg_id=uid("c"), body="x")
    first = await chat.messages.post(cmd)
    await chat.recent.drop(conv)
    restarted = wire_chat(redis, database.engine)
    try:
        again = await restarted.messages.post(cmd)
    finally:
        await restarted.aclose()
    assert again.replay and again.message == first.message


async def test_the_same_client_id_from_two_senders_is_two_messages(chat: Chat) -> None:
    alice, bob, client_id = uid(), uid(), uid("c")
    conv = await group(chat, alice, bob)
    a = await chat.messages.post(
        wire.PostMessage(sender_id=alice, conversation_id=conv, client_msg_id=client_id, body="a")
    )
    b = await chat.messages.post(
        wire.PostMessage(sender_id=bob, conversation_id=conv, client_msg_id=client_id, body="b")
    )
    assert (a.replay, b.replay, a.message.seq, b.message.seq) == (False, False, 1, 2)


async def test_the_store_refuses_a_post_to_no_conversation_and_stores_nothing(
    chat: Chat, database: Database
) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    store = SqlMessages(database.engine)
    draft = Draft(
        conversation_id=uid("nowhere"),
        sender_id=alice,
        client_msg_id=uid("c"),
        body="lost?",
        mentions=(bob,),
        created_at=datetime.now(UTC),
    )
    with pytest.raises(NotFoundError):
        await store.append(draft)
    assert await stored_count(database, draft.conversation_id) == 0
    stored, replay = await store.append(replace(draft, conversation_id=conv))
    assert (stored.seq, replay, stored.mentions, stored.body) == (1, False, (bob,), "lost?")
    assert await store.get(conv, 1) == stored


async def test_mentions_are_validated_against_membership(chat: Chat) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    ok = await chat.messages.post(
        wire.PostMessage(
            sender_id=alice, conversation_id=conv, client_msg_id=uid(), body="@b", mentions=[bob]
        )
    )
    assert ok.message.mentions == [bob]
    with pytest.raises(InvalidError):
        await chat.messages.post(
            wire.PostMessage(
                sender_id=alice,
                conversation_id=conv,
                client_msg_id=uid(),
                body="@x",
                mentions=[uid()],
            )
        )


async def test_edit_is_for_the_sender_and_delete_leaves_a_tombstone(chat: Chat) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    m = await post(chat, conv, bob, "first")
    with pytest.raises(ForbiddenError):
        await chat.messages.edit(
            wire.EditMessage(user_id=alice, conversation_id=conv, seq=m.seq, body="hack")
        )
    edited = await chat.messages.edit(
        wire.EditMessage(user_id=bob, conversation_id=conv, seq=m.seq, body="second")
    )
    assert edited.body == "second" and edited.edited_at is not None
    # alice owns the group: she may delete bob's message
    tomb = await chat.messages.delete(
        wire.DeleteMessage(user_id=alice, conversation_id=conv, seq=m.seq)
    )
    assert tomb.deleted and tomb.body == "" and tomb.seq == m.seq
    with pytest.raises(ConflictError):
        await chat.messages.edit(
            wire.EditMessage(user_id=bob, conversation_id=conv, seq=m.seq, body="again")
        )
    history = await chat.messages.history(wire.GetHistory(user_id=bob, conversation_id=conv))
    assert [(h.seq, h.deleted) for h in history.items] == [(1, True)]


async def test_caches_agree_with_the_database_after_edits_and_deletes(chat: Chat) -> None:
    alice, bob = uid(), uid()
    conv = await group(chat, alice, bob)
    for i in range(60):
        await post(chat, conv, alice if i % 2 else bob, f"m{i}")
    # an empty cache is filled by a read; edits and deletes are written through afterwards
    await chat.recent.drop(conv)
    await chat.messages.history(wire.GetHistory(user_id=alice, conversation_id=conv))
    for seq in (20, 40, 59):
        sender = alice if (seq - 1) % 2 else bob
        await chat.messages.edit(
            wire.EditMessage(user_id=sender, conversation_id=conv, seq=seq, body=f"e{seq}")
        )
    for seq in (15, 41, 60):
        await chat.messages.delete(wire.DeleteMessage(user_id=alice, conversation_id=conv, seq=seq))
    await post(chat, conv, bob, "last")
    windows = [
        {"before": None, "after": None, "limit": 50},
        {"before": None, "after": None, "limit": 10},
        {"before": 45, "after": None, "limit": 20},
        {"before": None, "after": 30, "limit": 40},
        {"before": None, "after": 55, "limit": 100},
        {"before": 12, "after": None, "limit": 100},
    ]
    cache_answers = 0
    for w in windows:
        from_db = await chat.sql_messages.history(conv, **w)  # type: ignore[arg-type]
        cached = await chat.recent.read(conv, **w)  # type: ignore[arg-type]
        if cached is not None:
            cache_answers += 1
            assert cached == from_db, w
        served = await chat.messages.history(
            wire.GetHistory(user_id=bob, conversation_id=conv, **w)  # type: ignore[arg-type]
        )
        assert [m.seq for m in served.items] == [m.seq for m in from_db]
        assert [(m.body, m.deleted) for m in served.items] == [(m.body, m.deleted) for m in from_db]
    # the windows inside the last 50 came from the cache, the older ones could not
    assert cache_answers == 5
    assert await chat.recent.read(conv, before=12, after=None, limit=5) is None


async def test_an_edit_while_the_cache_is_empty_is_never_undone_by_a_fill(chat: Chat) -> None:
    alice = uid()
    conv = await group(chat, alice, uid())
    for i in range(5):
        await post(chat, conv, alice, f"m{i}")
    await chat.recent.drop(conv)
    stale, top = await chat.sql_messages.latest(conv, 50)  # a reader loads...
    await chat.messages.edit(
        wire.EditMessage(user_id=alice, conversation_id=conv, seq=3, body="new")
    )  # ...an edit is written through meanwhile...
    await chat.recent.write(conv, stale, mode="fill", top=top)  # ...then the reader fills
    cached = await chat.recent.read(conv, before=None, after=None, limit=5)
    assert cached is not None and cached[2].body == "new"


async def test_the_cache_write_publishes_only_on_its_own_conversations_channel(chat: Chat) -> None:
    # The script publishes in the hash's slot: another conversation's channel (another slot, in
    # general) or a command that is not a publish is refused before anything is sent.
    alice = uid()
    conv, other = await group(chat, alice, uid()), await group(chat, alice, uid())
    m = await post(chat, conv, alice, "hi")
    stored = await chat.sql_messages.get(conv, m.seq)
    assert stored is not None
    await chat.recent.drop(conv)
    wrong = [
        (Announcement("SPUBLISH", chat.recent.channel(other), b"x", None), "is not the channel"),
        (Announcement("DEL", chat.recent.channel(conv), b"x", None), "not a publish command"),
    ]
    for announce, reason in wrong:
        with pytest.raises(ValueError, match=reason):
            await chat.recent.write(conv, [stored], mode="post", announce=announce)
    assert await chat.recent.read(conv, before=None, after=None, limit=1) is None
    right = Announcement("SPUBLISH", chat.recent.channel(conv), b"x", None)
    await chat.recent.write(conv, [stored], mode="post", announce=right)
    cached = await chat.recent.read(conv, before=None, after=None, limit=1)
    assert cached is not None and cached[0].body == "hi"
