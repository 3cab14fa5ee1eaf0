"""The outbox on the real cluster and databases: the events on ``notification.events`` and the
delivery jobs are written with the notifications, appended after the commit, and relayed when an
append fails or the process dies in between."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from contracts import chat, codec, realtime, registry
from contracts.base import Message, new_message_id, utcnow
from contracts.notification import MarkNotificationsRead, NotificationCreated, NotificationsRead
from contracts.topology import StreamSpec
from notification.bootstrap import Service, assemble
from notification.config import Settings
from notification.store.redis_delivery import DELIVERY_STREAM, DeliveryRequested
from notification.store.tables import metadata, outbox
from shared.bus import Publisher, wire
from shared.bus.testing import RefusingPublisher
from shared.outbox import pending_entries
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis
from shared.service.database import Database

pytestmark = pytest.mark.integration

EVENTS = registry.stream("notification.events")
M = TypeVar("M", bound=Message)


class Crash(BaseException):
    """The process dies here (nothing after it runs, no handler catches it)."""


class Dying(Publisher):
    """Our publisher in a process that dies right after the commit, before any append."""

    async def append(self, key: str, fields: wire.Fields) -> str:
        raise Crash


Make = Callable[..., Service]


@pytest.fixture
async def make_service(redis: AnyRedis, database: Database) -> AsyncIterator[Make]:
    """``make_service(publisher=None)``: an instance of the service on the test's database, not
    consuming (the tests call its handlers); each is stopped at the end."""
    made: list[Service] = []

    def make(publisher: Publisher | None = None) -> Service:
        settings = Settings(instance=f"test-{secrets.token_hex(4)}")
        service = assemble(redis, database.engine, settings, publisher=publisher)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.stop()


async def entries(
    redis: AnyRedis, spec: StreamSpec, cls: type[M], user_id: str
) -> list[tuple[str, M]]:
    """(message id, payload) of the ``cls`` entries of ``user_id`` on its partition of ``spec``."""
    found: list[tuple[str, M]] = []
    rows: Any = await redis.xrange(spec.key_for(user_id))
    for _, fields in rows:
        envelope = wire.decode_envelope(fields)
        if envelope.type != cls.TYPE:
            continue
        message = codec.decode(cls, fields[wire.PAYLOAD])
        if getattr(message, "user_id", None) == user_id:
            found.append((envelope.id, message))
    return found


async def outbox_ids(database: Database) -> set[str]:
    return {s.message_id for s in await pending_entries(database.engine, outbox)}


async def group_of_three(service: Service) -> tuple[str, str, str, str]:
    """A conversation of alice, bob and carol (bob and carol offline); its id and the three."""
    alice, bob, carol = (f"u-{secrets.token_hex(6)}" for _ in range(3))
    conversation = f"c-{secrets.token_hex(6)}"
    await service.handlers.projections.on_conversation_created(
        chat.ConversationCreated(
            conversation_id=conversation, kind="group", creator_id=alice, member_ids=[bob, carol]
        ),
        new_message_id(),
    )
    return conversation, alice, bob, carol


def posted(conversation: str, sender: str, body: str) -> chat.MessagePosted:
    return chat.MessagePosted(
        conversation_id=conversation,
        message=chat.ChatMessage(
            id=f"m-{secrets.token_hex(6)}",
            conversation_id=conversation,
            seq=1,
            sender_id=sender,
            body=body,
            client_msg_id=secrets.token_hex(6),
            created_at=utcnow(),
        ),
    )


async def appended(redis: AnyRedis, *users: str) -> dict[str, list[tuple[str, Any]]]:
    """Per user: the notification_created events and the delivery jobs appended for them."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for user_id in users:
        out[user_id] = [
            *await entries(redis, EVENTS, NotificationCreated, user_id),
            *await entries(redis, DELIVERY_STREAM, DeliveryRequested, user_id),
        ]
    return out


async def test_a_failed_append_keeps_the_rows_and_the_relay_appends_them_with_their_ids(
    make_service: Make, redis: AnyRedis, database: Database
) -> None:
    refusing = RefusingPublisher(redis, producer="notification")
    service = make_service(publisher=refusing)
    conversation, alice, bob, carol = await group_of_three(service)
    channel = registry.channel("rt.user").key(bob)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as bobs_devices:
        outcome = await service.handlers.messages.on_message_posted(
            posted(conversation, alice, "hello"), new_message_id()
        )  # the handler does not fail: the notifications and their entries are committed
        frame = await bobs_devices.get(timeout=10)  # the frame does not wait for the stream
    assert sorted(n.user_id for n in outcome.created) == sorted([bob, carol])
    written = await outbox_ids(database)
    assert len(written) == 4  # per member: the notification_created event and the log job
    assert await appended(redis, bob, carol) == {bob: [], carol: []}
    assert await service.outbox.forget_sent() == 0  # nothing was appended: the rows stay

    refusing.refusing = False  # Redis takes appends again; the relay's next pass finds the rows
    service.outbox.relay_after = 0.0
    assert await service.outbox.relay_once() == 4
    got = await appended(redis, bob, carol)
    assert {i for entries_ in got.values() for i, _ in entries_} == written
    bobs = {type(m).__name__: (i, m) for i, m in got[bob]}
    assert bobs["DeliveryRequested"][1].channel == "log"
    assert bobs["NotificationCreated"][1].unread_count == 1
    # The frame bob's devices got carries the envelope of the stream event relayed later.
    assert frame.envelope.id == bobs["NotificationCreated"][0]
    assert await service.outbox.count() == 0


async def test_a_crash_between_the_commit_and_the_appends_is_recovered_by_the_relay(
    make_service: Make, redis: AnyRedis, database: Database
) -> None:
    crashing = make_service(publisher=Dying(redis, producer="notification"))
    conversation, alice, bob, carol = await group_of_three(crashing)
    event, message_id = posted(conversation, alice, "hello"), new_message_id()
    with pytest.raises(Crash):
        await crashing.handlers.messages.on_message_posted(event, message_id)
    written = await outbox_ids(database)
    assert len(written) == 4
    assert await appended(redis, bob, carol) == {bob: [], carol: []}

    # The restarted instance: the bus redelivers the event, which creates and stages nothing new.
    restarted = make_service()
    again = await restarted.handlers.messages.on_message_posted(event, message_id)
    assert again.created == [] and again.grown == []
    assert await outbox_ids(database) == written
    restarted.outbox.relay_after = 0.0
    assert await restarted.outbox.relay_once() == 4
    got = await appended(redis, bob, carol)
    assert sorted(i for entries_ in got.values() for i, _ in entries_) == sorted(written)
    assert await restarted.outbox.count() == 0
    assert await restarted.outbox.relay_once() == 0  # forgotten: appended once


async def test_the_usual_path_appends_each_entry_once_and_the_forgetting_empties_the_outbox(
    service: Service, redis: AnyRedis, database: Database, eventually: Any
) -> None:
    conversation, alice, bob, carol = await group_of_three(service)
    channel = registry.channel("rt.user").key(bob)
    async with PubSub(redis).subscribe(channel, realtime.Frame) as bobs_devices:
        for body in ("one", "two"):  # the second grows the first notification
            await service.handlers.messages.on_message_posted(
                posted(conversation, alice, body), new_message_id()
            )
        frames = [await bobs_devices.get(timeout=10) for _ in range(2)]
        mark = MarkNotificationsRead(user_id=bob, all=True)
        assert (await service.handlers.reading.mark_read(mark)).count == 0
        read_frame = await bobs_devices.get(timeout=10)
    # The running service's outbox forgets appended rows within its forget interval.
    await eventually(service.outbox.count, lambda n: n == 0, timeout=5)
    got = await appended(redis, bob, carol)
    for user_id in (bob, carol):
        ids = [i for i, _ in got[user_id]]
        assert len(ids) == len(set(ids)) == 4  # two events, two log jobs: each once
    created = await entries(redis, EVENTS, NotificationCreated, bob)
    assert [(m.notification.count, m.unread_count) for _, m in created] == [(1, 1), (2, 1)]
    assert [f.envelope.id for f in frames] == [i for i, _ in created]
    [(read_id, read)] = await entries(redis, EVENTS, NotificationsRead, bob)
    assert (read_frame.envelope.id, read.unread_count) == (read_id, 0)


async def test_the_migrated_schema_matches_the_tables(database: Database) -> None:
    def differences(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with database.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
