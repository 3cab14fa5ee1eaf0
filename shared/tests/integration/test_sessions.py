"""The encrypted session store against the real test cluster."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from shared.keys import KeySpace
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.sessions import Keyring, SessionStore, session_handle, user_digest

pytestmark = pytest.mark.integration

KS = KeySpace("sesstest")


@pytest_asyncio.fixture(scope="module")
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def keyring(*ids: str, current: str | None = None) -> Keyring:
    keys = {key_id: KEYS.setdefault(key_id, os.urandom(32)) for key_id in ids}
    return Keyring(keys, current=current or ids[-1])


KEYS: dict[str, bytes] = {}


def store(
    client: AnyRedis, ring: Keyring | None = None, **ttl: float
) -> SessionStore[dict[str, Any]]:
    return SessionStore(client, KS, ring or keyring("k1"), data_type=dict[str, Any], **ttl)


def user() -> str:
    return f"user-{secrets.token_hex(6)}"


def stored_key(session_id: str) -> str:
    digest = session_id.split(".")[0]
    return KS.key("session", tag=f"user:{digest}", rest=session_handle(session_id))


def decrypt_failures() -> float:
    value = REGISTRY.get_sample_value(
        "parley_session_decrypt_failures_total", {"service": KS.prefix}
    )
    return value or 0.0


async def test_a_created_session_reads_back_and_is_encrypted_at_rest(client: AnyRedis) -> None:
    sessions = store(client)
    alice = user()
    created = await sessions.create(alice, {"device": "phone-with-a-unique-name"})
    assert created.id is not None

    found = await sessions.get(created.id)

    assert found is not None
    assert (found.user_id, found.data, found.id) == (alice, created.data, created.id)
    raw = await client.get(stored_key(created.id))
    assert raw is not None
    assert b"phone-with-a-unique-name" not in raw
    assert alice.encode() not in raw
    # Redis holds the handle, never the bearer id itself.
    assert created.id.split(".")[1] not in stored_key(created.id)


async def test_session_ids_are_long_random_and_urlsafe(client: AnyRedis) -> None:
    sessions = store(client)
    alice = user()
    ids = [(await sessions.create(alice, {})).id for _ in range(5)]
    assert len(set(ids)) == 5
    for session_id in ids:
        assert session_id is not None
        digest, secret = session_id.split(".")
        assert digest == user_digest(alice)
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32


async def test_unknown_and_malformed_ids_are_no_session(client: AnyRedis) -> None:
    sessions = store(client)
    assert await sessions.get("not-a-session") is None
    assert await sessions.get(f"{user_digest(user())}.{secrets.token_urlsafe(32)}") is None


async def test_an_idle_session_expires(client: AnyRedis) -> None:
    sessions = store(client, idle_ttl=0.3)
    created = await sessions.create(user(), {})
    assert created.id is not None
    await asyncio.sleep(0.45)
    assert await sessions.get(created.id) is None


async def test_touching_slides_the_idle_expiry(client: AnyRedis) -> None:
    sessions = store(client, idle_ttl=0.4)
    created = await sessions.create(user(), {})
    assert created.id is not None
    for _ in range(4):  # 0.8 s in all: twice the idle ttl
        await asyncio.sleep(0.2)
        assert await sessions.touch(created.id)
    await asyncio.sleep(0.55)
    assert await sessions.get(created.id) is None
    assert not await sessions.touch(created.id)


async def test_touching_never_extends_past_the_absolute_lifetime(client: AnyRedis) -> None:
    sessions = store(client, idle_ttl=0.5, max_lifetime=0.7)
    created = await sessions.create(user(), {})
    assert created.id is not None
    await asyncio.sleep(0.35)
    assert await sessions.get(created.id, touch=True) is not None
    # The idle ttl would allow 0.5 s more; the lifetime leaves only ~0.35 s.
    assert await client.pttl(stored_key(created.id)) <= 350
    await asyncio.sleep(0.2)
    assert await sessions.touch(created.id)
    await asyncio.sleep(0.2)
    assert await sessions.get(created.id) is None


async def test_revoked_session_is_gone(client: AnyRedis) -> None:
    sessions = store(client)
    created = await sessions.create(user(), {})
    assert created.id is not None
    assert await sessions.revoke(created.id)
    assert await sessions.get(created.id) is None
    assert not await sessions.revoke(created.id)


async def test_revoke_all_ends_every_session_of_one_user_only(client: AnyRedis) -> None:
    sessions = store(client)
    alice, bob = user(), user()
    alices = [await sessions.create(alice, {"n": n}) for n in range(3)]
    bobs = await sessions.create(bob, {})

    assert await sessions.revoke_all(alice) == 3

    for session in alices:
        assert session.id is not None
        assert await sessions.get(session.id) is None
    assert await sessions.list(alice) == []
    assert bobs.id is not None
    assert await sessions.get(bobs.id) is not None


async def test_list_shows_live_sessions_by_handle_and_revoking_a_handle_ends_one(
    client: AnyRedis,
) -> None:
    sessions = store(client)
    alice = user()
    first = await sessions.create(alice, {"device": "laptop"})
    second = await sessions.create(alice, {"device": "phone"})

    listed = await sessions.list(alice)

    assert [s.data["device"] for s in listed] == ["laptop", "phone"]
    assert [s.handle for s in listed] == [first.handle, second.handle]
    assert all(s.id is None for s in listed)
    assert await sessions.live(alice, first.handle)
    assert await sessions.revoke_handle(alice, first.handle)
    assert [s.handle for s in await sessions.list(alice)] == [second.handle]
    assert not await sessions.live(alice, first.handle)
    assert await sessions.live(alice, second.handle)
    assert not await sessions.live(user(), second.handle)  # another user's handle is not theirs


async def test_old_sessions_still_open_after_rotation_and_new_ones_use_the_new_key(
    client: AnyRedis,
) -> None:
    before = store(client, keyring("rot-a"))
    alice = user()
    old = await before.create(alice, {"v": 1})
    assert old.id is not None

    after = store(client, keyring("rot-a", "rot-b"))
    read = await after.get(old.id)
    new = await after.create(alice, {"v": 2})

    assert read is not None
    assert (read.key_id, read.data) == ("rot-a", {"v": 1})
    assert new.key_id == "rot-b"
    assert new.id is not None
    assert (await after.get(new.id)).key_id == "rot-b"  # type: ignore[union-attr]
    # Writing an old session reseals it with the current key.
    assert await after.update(old.id, {"v": 3})
    resealed = await after.get(old.id)
    assert resealed is not None
    assert (resealed.key_id, resealed.data) == ("rot-b", {"v": 3})


async def test_a_session_under_a_retired_key_is_no_session(client: AnyRedis) -> None:
    old = await store(client, keyring("ret-a")).create(user(), {})
    assert old.id is not None
    failures = decrypt_failures()
    assert await store(client, keyring("ret-b")).get(old.id) is None
    assert decrypt_failures() == failures + 1


async def test_a_tampered_session_is_no_session(client: AnyRedis) -> None:
    sessions = store(client)
    created = await sessions.create(user(), {"role": "member"})
    assert created.id is not None
    key = stored_key(created.id)
    stored = await client.get(key)
    assert isinstance(stored, bytes)
    raw = bytearray(stored)
    raw[-5] ^= 0x01
    await client.set(key, bytes(raw), keepttl=True)
    failures = decrypt_failures()

    assert await sessions.get(created.id) is None
    assert decrypt_failures() == failures + 1


async def test_a_ciphertext_moved_to_another_session_does_not_open(client: AnyRedis) -> None:
    sessions = store(client)
    alice = user()
    victim = await sessions.create(alice, {"role": "admin"})
    attacker = await sessions.create(alice, {"role": "member"})
    assert victim.id is not None
    assert attacker.id is not None
    victims_value = await client.get(stored_key(victim.id))
    assert isinstance(victims_value, bytes)
    await client.set(stored_key(attacker.id), victims_value, keepttl=True)

    assert await sessions.get(attacker.id) is None
    assert await sessions.get(victim.id) is not None


class Profile(msgspec.Struct, frozen=True):
    name: str
    roles: tuple[str, ...]


async def test_session_data_may_be_a_typed_struct(client: AnyRedis) -> None:
    sessions = SessionStore(client, KS, keyring("k1"), data_type=Profile)
    created = await sessions.create(user(), Profile(name="Ada", roles=("member",)))
    assert created.id is not None
    found = await sessions.get(created.id)
    assert found is not None
    assert found.data == Profile(name="Ada", roles=("member",))
