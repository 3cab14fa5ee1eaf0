"""Profiles on the real cluster and real databases: registration, caching, near-cache coherence."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import auth as auth_contracts
from contracts import registry
from contracts import user as wire
from contracts.base import Envelope
from shared.bus import Publisher
from shared.bus import wire as bus_wire
from shared.redis.client import AnyRedis
from user.store.sql_profiles import SqlProfileStore
from user.store.tables import profiles

pytestmark = pytest.mark.integration


def _registered() -> auth_contracts.AccountRegistered:
    suffix = secrets.token_hex(4)
    return auth_contracts.AccountRegistered(
        user_id=f"u-{suffix}", username=f"user_{suffix}", display_name=f"User {suffix}"
    )


def _envelope(message: Any) -> Envelope:
    return Envelope.for_message(message, producer="auth")


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _profile_rows(engine: AsyncEngine, user_id: str) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(profiles).where(profiles.c.user_id == user_id)
        return int(await conn.scalar(query) or 0)


async def _profile_events(client: AnyRedis, user_id: str) -> list[wire.ProfileUpdated]:
    key = registry.stream("user.events").key_for(user_id)
    found = []
    entries: list[tuple[Any, Any]] = await client.xrange(key)  # type: ignore[assignment]
    for _, fields in entries:
        envelope = bus_wire.decode_envelope(fields)
        if envelope.type == wire.ProfileUpdated.TYPE:
            event = bus_wire.decode_payload(wire.ProfileUpdated, fields)
            if isinstance(event, wire.ProfileUpdated) and event.user_id == user_id:
                found.append(event)
    return found


async def test_a_registration_delivered_twice_creates_one_profile_and_one_event(
    make_service: Any, engine: AsyncEngine, client: AnyRedis
) -> None:
    first, second = await make_service(), await make_service()
    registered = _registered()
    envelope = _envelope(registered)

    # The same delivery reaching two instances at once, then once more later.
    await asyncio.gather(
        first.profiles.account_registered(registered, envelope),
        second.profiles.account_registered(registered, envelope),
    )
    await first.profiles.account_registered(registered, envelope)

    assert await _profile_rows(engine, registered.user_id) == 1
    assert len(await _profile_events(client, registered.user_id)) == 1
    got = await second.profiles.get_profile(wire.GetProfile(user_id=registered.user_id), envelope)
    assert got.username == registered.username


async def test_a_registration_published_twice_on_auth_events_makes_one_profile(
    make_service: Any, engine: AsyncEngine, client: AnyRedis
) -> None:
    service = await make_service(started=True)
    auth = Publisher(client, producer="auth")
    registered = _registered()
    envelope = _envelope(registered)
    await auth.publish(registered, envelope=envelope)
    await auth.publish(registered, envelope=envelope)

    async def exists() -> bool:
        return await _profile_rows(engine, registered.user_id) == 1

    await _eventually(exists)
    await asyncio.sleep(0.3)  # room for the second delivery to (not) do anything
    assert await _profile_rows(engine, registered.user_id) == 1
    assert len(await _profile_events(client, registered.user_id)) == 1
    await auth.aclose()
    assert service.consumer.owned


async def test_an_update_reaches_every_instances_near_cache(
    make_service: Any, engine: AsyncEngine
) -> None:
    writer, reader = await make_service(), await make_service()
    registered = _registered()
    await writer.profiles.account_registered(registered, _envelope(registered))
    ask = wire.GetProfile(user_id=registered.user_id)
    env = _envelope(ask)
    assert (await reader.profiles.get_profile(ask, env)).display_name == registered.display_name

    # Behind the caches' back: the reader keeps serving its cached copy.
    sql = SqlProfileStore(engine, writer.outbox)
    stale = await sql.get(registered.user_id)
    assert stale is not None
    await sql.save(dataclasses.replace(stale, bio="written behind the cache"))
    assert (await reader.profiles.get_profile(ask, env)).bio == ""

    update = wire.UpdateProfile(user_id=registered.user_id, display_name="Renamed", bio="hi")
    await writer.profiles.update_profile(update, _envelope(update))

    async def reader_sees_update() -> bool:
        got = await reader.profiles.get_profile(ask, env)
        return bool(got.display_name == "Renamed")

    await _eventually(reader_sees_update, within=2.0)


async def test_many_profiles_come_back_in_the_order_asked_without_unknown_ids(
    make_service: Any,
) -> None:
    service = await make_service()
    users = [_registered() for _ in range(5)]
    for u in users:
        await service.profiles.account_registered(u, _envelope(u))
    ids = [users[3].user_id, "nobody-" + secrets.token_hex(3), users[0].user_id, users[4].user_id]
    ask = wire.GetProfiles(user_ids=ids)
    first = await service.profiles.get_profiles(ask, _envelope(ask))
    again = await service.profiles.get_profiles(ask, _envelope(ask))  # now from the cache
    expected = [users[3].user_id, users[0].user_id, users[4].user_id]
    assert [p.user_id for p in first.items] == expected
    assert again == first


async def test_search_finds_usernames_by_prefix_case_insensitively(make_service: Any) -> None:
    service = await make_service()
    stem = f"srch{secrets.token_hex(3)}"
    for name in (f"{stem}_alice", f"{stem}_alfred", f"{stem}_bob"):
        msg = auth_contracts.AccountRegistered(
            user_id=f"u-{secrets.token_hex(4)}", username=name, display_name=name
        )
        await service.profiles.account_registered(msg, _envelope(msg))
    ask = wire.SearchUsers(prefix=f"{stem.upper()}_AL", limit=10)
    found = await service.profiles.search_users(ask, _envelope(ask))
    assert [p.username for p in found.items] == [f"{stem}_alfred", f"{stem}_alice"]


async def test_a_profile_read_before_registration_is_not_remembered_as_missing(
    make_service: Any,
) -> None:
    service = await make_service()
    registered = _registered()
    assert await service.profiles._profiles.get(registered.user_id) is None  # caches "missing"
    await service.profiles.account_registered(registered, _envelope(registered))
    found = await service.profiles._profiles.get(registered.user_id)
    assert found is not None and found.created_at <= datetime.now(UTC)
