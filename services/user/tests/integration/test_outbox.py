"""The user service's events go through its outbox, on the real cluster and real databases: a
change and its event commit together, a failed append or a crash after the commit is made good by
the relay with the same message id, and the usual path appends each event once and forgets it."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import auth as auth_contracts
from contracts import registry
from contracts import user as wire
from contracts.base import Envelope, Message
from shared.bus import wire as bus_wire
from shared.bus.testing import RefusingPublisher
from shared.outbox import pending_entries
from shared.redis.client import AnyRedis
from user.handlers.profiles import to_wire
from user.store.sql_profiles import SqlProfileStore
from user.store.tables import outbox

pytestmark = pytest.mark.integration

EVENTS = registry.stream("user.events")


def _env(message: Any) -> Envelope:
    return Envelope.for_message(message, producer="test")


def _registered() -> auth_contracts.AccountRegistered:
    suffix = secrets.token_hex(4)
    return auth_contracts.AccountRegistered(
        user_id=f"o-{suffix}", username=f"o_{suffix}", display_name=f"O {suffix}"
    )


async def _register(service: Any) -> str:
    registered = _registered()
    await service.profiles.account_registered(registered, _env(registered))
    return registered.user_id


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _events(client: AnyRedis, user_id: str) -> list[tuple[str, Message]]:
    """(message id, event) of every user.events entry about ``user_id``, in stream order.

    Only the partition of ``user_id`` is read: an event anywhere else is not found.
    """
    entries: list[tuple[Any, Any]] = await client.xrange(EVENTS.key_for(user_id))  # type: ignore[assignment]
    found = []
    for _, fields in entries:
        envelope = bus_wire.decode_envelope(fields)
        event = bus_wire.decode_payload(
            registry.message_class(envelope.type, envelope.version), fields
        )
        if getattr(event, "user_id", None) == user_id:
            found.append((envelope.id, event))
    return found


async def _outbox_rows(engine: AsyncEngine) -> list[tuple[str, str]]:
    """(message id, stream key) of every event in the outbox, in the order they were written."""
    return [(s.message_id, s.key) for s in await pending_entries(engine, outbox)]


async def test_a_profile_update_whose_append_fails_succeeds_and_the_relay_appends_it_later(
    make_service: Any, engine: AsyncEngine, client: AnyRedis
) -> None:
    refusing = await make_service(publisher=RefusingPublisher(client, producer="user"))
    me = await _register(refusing)  # its append fails as well: both events wait in the outbox
    update = wire.UpdateProfile(user_id=me, display_name="Renamed")

    got = await refusing.profiles.update_profile(update, _env(update))

    assert got.display_name == "Renamed"  # the command succeeds: change and event are committed
    rows = await _outbox_rows(engine)
    assert [key for _, key in rows] == [EVENTS.key_for(me)] * 2
    assert await refusing.outbox.forget_sent() == 0  # nothing was appended, nothing forgotten
    assert await _events(client, me) == []
    refusing.outbox.relay_after = 0.0
    with pytest.raises(ConnectionError):  # Redis still refuses: the relay keeps the rows
        await refusing.outbox.relay_once()
    assert await refusing.outbox.count() == 2

    healthy = await make_service()  # Redis is back (or another instance relays)
    healthy.outbox.relay_after = 0.0
    assert await healthy.outbox.relay_once() == 2
    events = await _events(client, me)
    assert [message_id for message_id, _ in events] == [message_id for message_id, _ in rows]
    last = events[-1][1]
    assert isinstance(last, wire.ProfileUpdated) and last.profile.display_name == "Renamed"
    assert await healthy.outbox.count() == 0


async def test_a_crash_between_the_commit_and_the_append_is_recovered_by_the_relay(
    make_service: Any, engine: AsyncEngine, client: AnyRedis
) -> None:
    crashed = await make_service()
    me = await _register(crashed)
    assert await crashed.outbox.forget_sent() == 1  # the registration took the usual path
    store = SqlProfileStore(engine, crashed.outbox)
    current = await store.get(me)
    assert current is not None
    updated = dataclasses.replace(current, bio="saved, never sent", updated_at=datetime.now(UTC))
    staged = [crashed.outbox.stage(wire.ProfileUpdated(user_id=me, profile=to_wire(updated)))]
    await store.save(updated, events=staged)
    # The process dies here, after the commit and before the append: no send.

    survivor = await make_service()
    assert await survivor.outbox.relay_once() == 0  # too fresh: its writer may still send it
    survivor.outbox.relay_after = 0.0
    survivor.outbox.relay_interval = survivor.outbox.forget_interval = 0.05
    survivor.outbox.start()  # stopped by the fixture

    async def relayed() -> bool:
        return staged[0].message_id in [message_id for message_id, _ in await _events(client, me)]

    await _eventually(relayed)
    await _eventually(lambda: _is_empty(survivor))
    events = await _events(client, me)
    assert [type(e) for _, e in events] == [wire.ProfileUpdated, wire.ProfileUpdated]
    assert events[-1] == (
        staged[0].message_id,
        wire.ProfileUpdated(user_id=me, profile=to_wire(updated)),
    )


async def _is_empty(service: Any) -> bool:
    return bool(await service.outbox.count() == 0)


async def test_the_usual_path_appends_each_event_once_and_forgets_its_row(
    make_service: Any, client: AnyRedis
) -> None:
    service = await make_service()
    me, other = await _register(service), await _register(service)
    profile = wire.UpdateProfile(user_id=me, bio="hello")
    prefs = wire.UpdatePreferences(user_id=me, theme="dark")
    add = wire.AddContact(user_id=me, contact_id=other)
    remove = wire.RemoveContact(user_id=me, contact_id=other)
    block = wire.BlockUser(user_id=me, blocked_id=other)
    unblock = wire.UnblockUser(user_id=me, blocked_id=other)
    await service.profiles.update_profile(profile, _env(profile))
    await service.preferences.update_preferences(prefs, _env(prefs))
    rel = service.relationships
    for call, command in (
        (rel.add_contact, add),
        (rel.add_contact, add),  # a repeat changes nothing and announces nothing
        (rel.remove_contact, remove),
        (rel.remove_contact, remove),
        (rel.block_user, block),
        (rel.block_user, block),
        (rel.unblock_user, unblock),
        (rel.unblock_user, unblock),
    ):
        await call(command, _env(command))

    assert await service.outbox.forget_sent() == 8  # each appended event's row, in one pass
    assert await service.outbox.count() == 0
    service.outbox.relay_after = 0.0
    assert await service.outbox.relay_once() == 0  # nothing left to append a second time
    events = await _events(client, me)
    assert [type(e) for _, e in events] == [
        wire.ProfileUpdated,  # the registration
        wire.ProfileUpdated,
        wire.PreferencesUpdated,
        wire.ContactAdded,
        wire.ContactRemoved,
        wire.UserBlocked,
        wire.UserUnblocked,
    ]
    assert len({message_id for message_id, _ in events}) == len(events)
    assert events[3][1] == wire.ContactAdded(user_id=me, contact_id=other)
    assert events[5][1] == wire.UserBlocked(user_id=me, blocked_id=other)


async def test_a_redelivered_registration_stages_no_second_event(
    make_service: Any, engine: AsyncEngine, client: AnyRedis
) -> None:
    # Appends fail, so every event written stays in the outbox where it can be counted.
    first = await make_service(publisher=RefusingPublisher(client, producer="user"))
    second = await make_service(publisher=RefusingPublisher(client, producer="user"))
    registered = _registered()
    envelope = _env(registered)

    await asyncio.gather(
        first.profiles.account_registered(registered, envelope),
        second.profiles.account_registered(registered, envelope),
    )
    await first.profiles.account_registered(registered, envelope)

    rows = await _outbox_rows(engine)
    assert [key for _, key in rows] == [EVENTS.key_for(registered.user_id)]
    healthy = await make_service()
    healthy.outbox.relay_after = 0.0
    assert await healthy.outbox.relay_once() == 1
    events = await _events(client, registered.user_id)
    assert [message_id for message_id, _ in events] == [rows[0][0]]
