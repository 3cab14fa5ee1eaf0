"""The service through the bus: commands answered with typed replies and stable error codes,
block events followed, all on private streams of the test cluster."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chat.bootstrap import Chat, consumer
from contracts import chat as wire
from contracts import user as user_wire
from contracts.base import ErrorCode, Message, Reply
from contracts.topology import StreamSpec, partition_of
from shared.bus import ConsumerSettings, Publisher, Requester, naming
from shared.bus import wire as bus_wire
from shared.redis.client import AnyRedis

from .scenario import uid

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(block_ms=100, lease_ttl=1.5, backoff_base=0.01)


@pytest.fixture
async def requester(
    chat: Chat, redis: AnyRedis
) -> AsyncIterator[tuple[Requester, Publisher, StreamSpec]]:
    """A running chat consumer and a caller, on fresh private streams."""
    owner = f"t{uuid.uuid4().hex[:10]}"
    commands = StreamSpec(name=f"{owner}.commands", owner=owner, partitions=2, max_len=10_000)
    events = StreamSpec(name=f"{owner}.events", owner=owner, partitions=2, max_len=10_000)

    def stream_of(cls: type[Message]) -> StreamSpec:
        return events if cls.TYPE.startswith("user.") else commands

    bus = consumer(chat, redis, settings=FAST, stream_of=stream_of)
    publisher = Publisher(redis, producer="gateway", stream_of=stream_of)
    await bus.start()
    try:
        async with Requester(redis, publisher, instance_id=uid("gw")) as caller:
            yield caller, publisher, commands
    finally:
        await bus.stop()
        await publisher.aclose()


async def test_commands_get_typed_replies_and_stable_error_codes(
    requester: tuple[Requester, Publisher, StreamSpec],
) -> None:
    caller, _, _ = requester
    alice, bob, stranger = uid(), uid(), uid()
    created = await caller.request(
        wire.CreateConversation(creator_id=alice, kind="group", member_ids=[bob], title="t"),
        timeout=5,
    )
    assert created.ok and isinstance(created.result, wire.Conversation)
    conv = created.result.id
    cmd = wire.PostMessage(sender_id=bob, conversation_id=conv, client_msg_id=uid(), body="hi")
    first, again = await caller.request(cmd, timeout=5), await caller.request(cmd, timeout=5)
    assert isinstance(first.result, wire.PostResult) and isinstance(again.result, wire.PostResult)
    assert (first.result.message.seq, first.result.replay) == (1, False)
    assert (again.result.message.id, again.result.replay) == (first.result.message.id, True)
    refused = await caller.request(
        wire.PostMessage(sender_id=stranger, conversation_id=conv, client_msg_id=uid(), body="x"),
        timeout=5,
    )
    assert not refused.ok and refused.error is not None
    # A stranger's write is refused as if the conversation did not exist: no existence oracle.
    assert refused.error.code is ErrorCode.NOT_FOUND
    hidden = await caller.request(
        wire.GetHistory(user_id=stranger, conversation_id=conv), timeout=5
    )
    assert hidden.error is not None and hidden.error.code is ErrorCode.NOT_FOUND


async def test_block_events_refuse_direct_conversations(
    requester: tuple[Requester, Publisher, StreamSpec],
) -> None:
    caller, publisher, _ = requester
    alice, bob = uid(), uid()
    await publisher.publish(user_wire.UserBlocked(user_id=alice, blocked_id=bob))
    for _ in range(50):
        reply = await caller.request(
            wire.CreateConversation(creator_id=bob, kind="direct", member_ids=[alice]), timeout=5
        )
        if not reply.ok:
            break
        await asyncio.sleep(0.1)  # the event and the command travel on different streams
    assert reply.error is not None and reply.error.code is ErrorCode.FORBIDDEN


async def test_a_post_delivered_twice_is_stored_once_and_leaves_no_handled_mark(
    requester: tuple[Requester, Publisher, StreamSpec], redis: AnyRedis
) -> None:
    # A producer retry: the same command (same envelope) appended twice. The database's unique
    # client message id makes the copy a replay, so the bus keeps no marks for posts.
    caller, publisher, commands = requester
    alice, bob = uid(), uid()
    created = await caller.request(
        wire.CreateConversation(creator_id=alice, kind="direct", member_ids=[bob]), timeout=5
    )
    assert isinstance(created.result, wire.Conversation)
    conv = created.result.id
    cmd = wire.PostMessage(sender_id=alice, conversation_id=conv, client_msg_id=uid(), body="once")
    envelope = publisher.envelope_for(cmd)
    for _ in range(2):
        await publisher.append(commands.key_for(conv), bus_wire.entry_fields(envelope, cmd))
    marker = wire.PostMessage(sender_id=bob, conversation_id=conv, client_msg_id=uid(), body="end")
    answered = await caller.request(marker, timeout=5)  # same partition: after both copies
    assert isinstance(answered.result, wire.PostResult)
    history = await caller.request(wire.GetHistory(user_id=bob, conversation_id=conv), timeout=5)
    assert isinstance(history.result, wire.History)
    assert [(m.seq, m.body) for m in history.result.items] == [(1, "once"), (2, "end")]
    # Other commands of the group keep their marks: one appended after the posts gets its mark
    # (acknowledgements go out in order), and by then the posts' would be written too.
    later = wire.GetHistory(user_id=bob, conversation_id=conv)
    later_envelope = publisher.envelope_for(later)
    await publisher.append(commands.key_for(conv), bus_wire.entry_fields(later_envelope, later))
    prefix = naming.dedupe_prefix(commands, "chat", partition_of(conv, commands.partitions))
    for _ in range(100):
        if await redis.exists(prefix + later_envelope.id):
            break
        await asyncio.sleep(0.05)
    assert await redis.exists(prefix + later_envelope.id) == 1
    assert await redis.exists(prefix + envelope.id) == 0


async def test_a_nul_smuggled_past_the_gateway_is_refused_and_the_conversation_goes_on(
    requester: tuple[Requester, Publisher, StreamSpec],
) -> None:
    # Appended straight to the commands stream by the bus producer, which does not validate:
    # PostgreSQL cannot store a NUL, and a post failing in the database would be retried until
    # dead-lettered, holding up every later post of the conversation's partition.
    caller, _, _ = requester
    alice, bob = uid(), uid()
    created = await caller.request(
        wire.CreateConversation(creator_id=alice, kind="direct", member_ids=[bob]), timeout=5
    )
    assert isinstance(created.result, wire.Conversation)
    conv = created.result.id
    for body in ("a\x00b", "bell\x07", "\x1b[2J", "c1\x85"):
        bad = wire.PostMessage(
            sender_id=alice, conversation_id=conv, client_msg_id=uid(), body=body
        )
        refused = await caller.request(bad, timeout=5)
        assert refused.error is not None, body
        assert refused.error.code is ErrorCode.INVALID
        assert "control characters" in refused.error.message
    good = wire.PostMessage(
        sender_id=bob, conversation_id=conv, client_msg_id=uid(), body="line\n\ttab"
    )
    answered = await caller.request(good, timeout=5)
    assert isinstance(answered.result, wire.PostResult)
    assert answered.result.message.seq == 1
    edit = wire.EditMessage(user_id=bob, conversation_id=conv, seq=1, body="x\x00")
    edited = await caller.request(edit, timeout=5)
    assert edited.error is not None and edited.error.code is ErrorCode.INVALID
    titled = await caller.request(
        wire.CreateConversation(creator_id=alice, kind="group", member_ids=[bob], title="t\x00"),
        timeout=5,
    )
    assert titled.error is not None and titled.error.code is ErrorCode.INVALID
    history = await caller.request(wire.GetHistory(user_id=bob, conversation_id=conv), timeout=5)
    assert isinstance(history.result, wire.History)
    assert [m.body for m in history.result.items] == ["line\n\ttab"]


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    # Events and commands travel on different streams: poll until the event has been applied.
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_a_blocked_user_cannot_post_to_the_blocker_nor_add_them_until_unblocked(
    requester: tuple[Requester, Publisher, StreamSpec],
) -> None:
    caller, publisher, commands = requester
    events = StreamSpec(
        name=commands.name.replace(".commands", ".events"),
        owner=commands.owner,
        partitions=2,
        max_len=10_000,
    )
    alice, bob, carol, dave = uid(), uid(), uid(), uid()
    direct = await caller.request(
        wire.CreateConversation(creator_id=alice, kind="direct", member_ids=[bob]), timeout=5
    )
    shared = await caller.request(
        wire.CreateConversation(creator_id=carol, kind="group", member_ids=[alice, bob], title="g"),
        timeout=5,
    )
    assert isinstance(direct.result, wire.Conversation)
    assert isinstance(shared.result, wire.Conversation)
    conv, group = direct.result.id, shared.result.id

    async def post(sender: str, where: str) -> Reply[Any]:
        cmd = wire.PostMessage(
            sender_id=sender, conversation_id=where, client_msg_id=uid(), body="x"
        )
        return await caller.request(cmd, timeout=5)

    async def bob_refused() -> bool:
        return not (await post(bob, conv)).ok

    blocked = user_wire.UserBlocked(user_id=alice, blocked_id=bob)
    blocked_envelope = publisher.envelope_for(blocked)
    await publisher.append(
        events.key_for(alice),
        bus_wire.entry_fields(blocked_envelope, blocked),
    )
    await _until(bob_refused)
    for sender in (bob, alice):  # neither side of a block writes in their direct conversation
        reply = await post(sender, conv)
        assert reply.error is not None and reply.error.code is ErrorCode.FORBIDDEN
    typing = await caller.request(
        wire.SetTyping(user_id=bob, conversation_id=conv, typing=True), timeout=5
    )
    assert typing.error is not None and typing.error.code is ErrorCode.FORBIDDEN
    # Inside a shared group messages still flow both ways.
    assert (await post(bob, group)).ok and (await post(alice, group)).ok
    # Bob cannot pull Alice into a group of his, neither by creating nor by adding.
    own = await caller.request(
        wire.CreateConversation(creator_id=bob, kind="group", member_ids=[alice], title="t"),
        timeout=5,
    )
    assert own.error is not None and own.error.code is ErrorCode.FORBIDDEN
    mine = await caller.request(
        wire.CreateConversation(creator_id=bob, kind="group", member_ids=[carol], title="t"),
        timeout=5,
    )
    assert isinstance(mine.result, wire.Conversation)
    added = await caller.request(
        wire.AddMembers(user_id=bob, conversation_id=mine.result.id, member_ids=[alice]),
        timeout=5,
    )
    assert added.error is not None and added.error.code is ErrorCode.FORBIDDEN

    await publisher.publish(user_wire.UserUnblocked(user_id=alice, blocked_id=bob))

    async def bob_posts() -> bool:
        return (await post(bob, conv)).ok

    await _until(bob_posts)
    # The block event delivered again (same envelope) after the unblock changes nothing.
    await publisher.append(
        events.key_for(alice),
        bus_wire.entry_fields(blocked_envelope, blocked),
    )
    # A later event of the same blocker, on the same partition, marks when the copy was read.
    await publisher.publish(user_wire.UserBlocked(user_id=alice, blocked_id=dave))

    async def dave_refused() -> bool:
        cmd = wire.CreateConversation(creator_id=dave, kind="direct", member_ids=[alice])
        return not (await caller.request(cmd, timeout=5)).ok

    await _until(dave_refused)
    assert (await post(bob, conv)).ok
    added = await caller.request(
        wire.AddMembers(user_id=bob, conversation_id=mine.result.id, member_ids=[alice]),
        timeout=5,
    )
    assert added.ok
