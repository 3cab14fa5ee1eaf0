"""auth.events through the outbox, on the test cluster with SQLite and PostgreSQL: an event is
committed with its change, a failed append or a crash after the commit is made good by the relay,
and the usual path appends each event once and forgets its row."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from auth.api.publishers import to_contract
from auth.bootstrap import lifecycle
from auth.domain.events import PasswordChanged
from auth.domain.sessions import ClientDetails
from auth.store.redis_sessions import RedisSessions
from auth.store.tables import accounts, metadata, outbox
from contracts import auth as wire_auth
from shared.bus import Consumer, Publisher, wire
from shared.bus.testing import RefusingPublisher
from shared.outbox import Outbox, pending_entries

from .conftest import (
    FAST,
    GOOD,
    AuthOverBus,
    appended,
    name,
    password_changed_beside_a_second_session,
    register,
)

pytestmark = pytest.mark.integration


class Stalling(Publisher):
    """Once ``stall`` is set, an append never returns: the process stops right there."""

    stall = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = asyncio.Event()

    async def append(self, key: str, fields: wire.Fields) -> str:
        if self.stall:
            self.stalled.set()
            await asyncio.Event().wait()
        return await super().append(key, fields)


async def rows(auth: AuthOverBus) -> list[tuple[str, str]]:
    """(message id, event type) of each event in the outbox, in the order they were written."""
    return [
        (s.message_id, s.envelope.type) for s in await pending_entries(auth.database.engine, outbox)
    ]


async def test_the_migrations_create_the_tables_the_store_declares(auth: AuthOverBus) -> None:
    async with auth.database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    assert diff == []


@pytest.mark.parametrize("publisher_type", [RefusingPublisher])
async def test_a_registration_whose_append_fails_succeeds_and_the_relay_appends_its_event(
    auth: AuthOverBus,
) -> None:
    username = name()
    registered = await register(auth, username)  # the append fails; the command does not
    [(message_id, _)] = [r for r in await rows(auth) if r[1] == wire_auth.AccountRegistered.TYPE]
    assert await appended(auth) == []

    cast(RefusingPublisher, auth.parts.publisher).refusing = False  # Redis is back
    relay = auth.parts.outbox
    relay.relay_after = 0.0
    assert await relay.relay_once() == 2  # the rotation at start-up, then the registration
    [(env, event)] = [e for e in await appended(auth) if e[0].type == "auth.account_registered"]
    assert env.id == message_id and env.producer == "auth"
    assert event == wire_auth.AccountRegistered(
        user_id=registered.user_id, username=username, display_name="Test", roles=["user"]
    )
    assert await relay.count() == 0


@pytest.mark.parametrize("publisher_type", [RefusingPublisher])
async def test_revocations_and_key_rotations_are_kept_for_the_relay_too(
    auth: AuthOverBus,
) -> None:
    pair = await register(auth, name())
    reply = await auth.send(wire_auth.Logout(user_id=pair.user_id, session_id=pair.session_id))
    assert reply.ok, reply.error
    await auth.parts.keys.rotate()
    written = await rows(auth)
    assert [t for _, t in written] == [
        "auth.signing_keys_rotated",
        "auth.account_registered",
        "auth.session_revoked",
        "auth.signing_keys_rotated",
    ]

    cast(RefusingPublisher, auth.parts.publisher).refusing = False
    auth.parts.outbox.relay_after = 0.0
    assert await auth.parts.outbox.relay_once() == 4
    got = await appended(auth)
    assert [env.id for env, _ in got] == [i for i, _ in written]
    revoked = got[2][1]
    assert isinstance(revoked, wire_auth.SessionRevoked)
    assert (revoked.session_id, revoked.reason) == (pair.session_id, "logout")
    rotated = got[3][1]
    assert isinstance(rotated, wire_auth.SigningKeysRotated)
    assert rotated.keys[0].kid == auth.parts.keys.active().kid
    assert await auth.parts.outbox.count() == 0


@pytest.mark.parametrize("publisher_type", [Stalling])
async def test_a_crash_between_the_commit_and_the_append_is_recovered_by_the_relay(
    auth: AuthOverBus,
) -> None:
    await auth.parts.outbox.forget_sent()  # the start-up rotation was appended: forget its row
    publisher = cast(Stalling, auth.parts.publisher)
    publisher.stall = True
    username = name()
    registering = asyncio.create_task(
        auth.parts.commands.accounts.register(
            str(uuid.uuid4()),
            username=username,
            password=GOOD,
            display_name="Crash",
            client=ClientDetails(),
        )
    )
    await asyncio.wait_for(publisher.stalled.wait(), 10)  # committed, now appending
    registering.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await registering
    async with auth.database.engine.connect() as conn:
        query = select(accounts.c.user_id).where(accounts.c.username == username)
        user_id = (await conn.execute(query)).scalar_one()
    [(message_id, kind)] = await rows(auth)
    assert kind == "auth.account_registered"
    assert [env.type for env, _ in await appended(auth)] == ["auth.signing_keys_rotated"]

    # Another instance (or this one restarted): its relay leaves young rows to their writer.
    survivor = Outbox(auth.database.engine, outbox, Publisher(auth.redis, producer="auth"))
    assert await survivor.relay_once() == 0
    survivor.relay_after = 0.0
    assert await survivor.relay_once() == 1
    [_, (env, event)] = await appended(auth)
    assert env.id == message_id
    assert event == wire_auth.AccountRegistered(
        user_id=user_id, username=username, display_name="Crash", roles=["user"]
    )
    assert await survivor.count() == 0
    assert await survivor.relay_once() == 0


async def test_events_are_appended_once_and_their_rows_forgotten(auth: AuthOverBus) -> None:
    username = name()
    first, second = await password_changed_beside_a_second_session(auth, username)
    assert await auth.parts.outbox.count() == 4  # appended, not yet forgotten
    assert await auth.parts.outbox.forget_sent() == 4
    assert await auth.parts.outbox.count() == 0

    got = await appended(auth)
    assert [env.type for env, _ in got] == [
        "auth.signing_keys_rotated",
        "auth.account_registered",
        "auth.session_revoked",  # the other sessions end before the new password commits
        "auth.password_changed",
    ]
    assert len({env.id for env, _ in got}) == 4
    registered = got[1]
    assert registered[0].causation_id is not None  # caused by the register command
    assert registered[1] == wire_auth.AccountRegistered(
        user_id=first.user_id, username=username, display_name="Test", roles=["user"]
    )
    assert got[3][1] == wire_auth.PasswordChanged(user_id=first.user_id)
    revoked = got[2][1]
    assert isinstance(revoked, wire_auth.SessionRevoked)
    assert (revoked.session_id, revoked.reason) == (second.session_id, "password_changed")
    auth.parts.outbox.relay_after = 0.0
    assert await auth.parts.outbox.relay_once() == 0  # nothing left to append again


async def test_a_running_instance_relays_what_an_earlier_run_left(auth: AuthOverBus) -> None:
    left = auth.parts.outbox.stage(to_contract(PasswordChanged(user_id="left-behind")))
    left = dataclasses.replace(left, created_at=datetime.now(UTC) - timedelta(hours=1))
    async with auth.database.engine.begin() as conn:
        await auth.parts.outbox.write(conn, [left])  # committed by a run that died before sending
    consumer = Consumer(
        auth.redis,
        group="auth",
        handlers=auth.parts.commands.table(),
        settings=FAST,
        stream_of=auth.stream_of,
        producer="auth",
    )
    start, stop = lifecycle(auth.parts, consumer)
    await start()
    try:
        for _ in range(200):  # the relay's first pass runs at start
            if any(env.id == left.message_id for env, _ in await appended(auth)):
                break
            await asyncio.sleep(0.05)
    finally:
        await stop()
    assert await auth.parts.outbox.count() == 0
    [event] = [e for env, e in await appended(auth) if env.id == left.message_id]
    assert event == wire_auth.PasswordChanged(user_id="left-behind")


async def test_a_refused_command_stores_no_event(auth: AuthOverBus) -> None:
    username = name()
    await register(auth, username)
    twin = await auth.send(
        wire_auth.Register(username=username.upper(), password=GOOD, display_name="Twin")
    )
    assert not twin.ok  # the account insert fails: its transaction, event included, rolls back
    kinds = [t for _, t in await rows(auth)]
    assert kinds.count("auth.account_registered") == 1
    registered = [e for env, e in await appended(auth) if env.type == "auth.account_registered"]
    assert len(registered) == 1


@pytest.mark.parametrize("publisher_type", [RefusingPublisher])
async def test_a_revocation_whose_instance_died_after_the_commit_still_ends_the_session(
    auth: AuthOverBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = await register(auth, name())
    carry_out = RedisSessions.revoke

    async def dies(self: RedisSessions, user_id: str, handle: str) -> bool:
        raise ConnectionError("the instance died here")

    monkeypatch.setattr(RedisSessions, "revoke", dies)
    with pytest.raises(ConnectionError):
        await auth.parts.commands.sessions.logout(pair.user_id, pair.session_id)
    monkeypatch.setattr(RedisSessions, "revoke", carry_out)

    async def live() -> list[str]:
        reply = await auth.send(wire_auth.ListSessions(user_id=pair.user_id))
        return [s.session_id for s in reply.result.items]

    # Committed, but neither carried out nor appended: the session is still live.
    assert [t for _, t in await rows(auth)][-1] == "auth.session_revoked"
    assert await live() == [pair.session_id]

    cast(RefusingPublisher, auth.parts.publisher).refusing = False  # a relay appends the row
    auth.parts.outbox.relay_after = 0.0
    assert await auth.parts.outbox.relay_once() >= 1
    for _ in range(100):  # auth's revocations group carries the announcement out
        if not await live():
            break
        await asyncio.sleep(0.05)
    assert await live() == []
    refused = await auth.send(wire_auth.Refresh(refresh_token=pair.refresh_token))
    assert not refused.ok and refused.error.code == "unauthenticated"
    [revoked] = [e for env, e in await appended(auth) if env.type == "auth.session_revoked"]
    assert isinstance(revoked, wire_auth.SessionRevoked)
    assert (revoked.session_id, revoked.reason) == (pair.session_id, "logout")
