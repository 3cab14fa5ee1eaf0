"""Refresh-token families: rotation, reuse detection, revocation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from auth.domain.errors import InvalidRefreshToken, RefreshTokenReused, SessionNotFound
from auth.domain.events import SessionRevoked
from auth.domain.sessions import ClientDetails, RefreshFamily, token_hash

pytestmark = pytest.mark.unit

GOOD = "correct horse battery"


def test_rotation_accepts_only_the_latest_token_and_remembers_the_retired_one() -> None:
    family = RefreshFamily(token_hash=token_hash("a"))
    rotated = family.rotate(token_hash("a"), token_hash("b"), now=1.0)
    assert (rotated.token_hash, rotated.generation) == (token_hash("b"), 1)
    with pytest.raises(RefreshTokenReused):
        rotated.rotate(token_hash("a"), token_hash("c"), now=2.0)
    with pytest.raises(InvalidRefreshToken) as e:
        rotated.rotate(token_hash("never issued"), token_hash("c"), now=2.0)
    assert not isinstance(e.value, RefreshTokenReused)


async def _session(fake_auth: Any) -> Any:
    return await fake_auth.accounts.register(
        str(uuid.uuid4()),
        username=f"u{uuid.uuid4().hex[:8]}",
        password=GOOD,
        display_name="U",
        client=ClientDetails(device="phone"),
    )


async def test_refresh_rotates_and_reuse_of_the_old_token_revokes_the_family(
    fake_auth: Any,
) -> None:
    first = await _session(fake_auth)
    second = await fake_auth.sessions.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.session_id == first.session_id
    third = await fake_auth.sessions.refresh(second.refresh_token)
    fake_auth.events.events.clear()
    with pytest.raises(RefreshTokenReused):
        await fake_auth.sessions.refresh(first.refresh_token)
    [event] = fake_auth.events.events
    assert isinstance(event, SessionRevoked) and event.reason == "token_reuse"
    with pytest.raises(InvalidRefreshToken):  # the family is gone: even its newest token
        await fake_auth.sessions.refresh(third.refresh_token)


async def test_a_replayed_refresh_answers_the_same_pair_instead_of_looking_like_reuse(
    fake_auth: Any,
) -> None:
    first = await _session(fake_auth)
    message_id = str(uuid.uuid4())
    a = await fake_auth.sessions.refresh(first.refresh_token, message_id=message_id)
    b = await fake_auth.sessions.refresh(first.refresh_token, message_id=message_id)
    assert a == b
    assert await fake_auth.sessions.refresh(a.refresh_token)


@pytest.mark.parametrize("token", ["", "nodot", "a.b", "x" * 40])
async def test_malformed_refresh_tokens_are_refused(fake_auth: Any, token: str) -> None:
    with pytest.raises(InvalidRefreshToken):
        await fake_auth.sessions.refresh(token)


async def test_sessions_are_listed_and_revoked_one_or_all_each_with_an_event(
    fake_auth: Any,
) -> None:
    first = await _session(fake_auth)
    user = first.user_id
    for _ in range(2):
        await fake_auth.sessions.open(fake_auth.db.accounts[user], ClientDetails())
    listed = await fake_auth.sessions.list(user)
    assert len(listed) == 3 and listed[0].client.device == "phone"
    fake_auth.events.events.clear()
    assert await fake_auth.sessions.revoke(user, listed[1].session_id) == 1
    with pytest.raises(SessionNotFound):
        await fake_auth.sessions.revoke(user, listed[1].session_id)
    assert await fake_auth.sessions.revoke(user, None, keep=first.session_id) == 1
    assert [s.session_id for s in await fake_auth.sessions.list(user)] == [first.session_id]
    revoked = [e.session_id for e in fake_auth.events.events if isinstance(e, SessionRevoked)]
    assert sorted(revoked) == sorted([listed[1].session_id, listed[2].session_id])


async def test_a_revocation_is_announced_before_it_is_carried_out(fake_auth: Any) -> None:
    first = await _session(fake_auth)
    fake_auth.events.events.clear()
    fake_auth.sessions_store.failing_revocations = 1  # the process dies after the commit
    with pytest.raises(ConnectionError):
        await fake_auth.sessions.logout(first.user_id, first.session_id)
    # The decision is durable: the relay appends it, and the revocations group carries it out.
    [event] = fake_auth.events.events
    assert isinstance(event, SessionRevoked) and event.session_id == first.session_id
    assert [s.session_id for s in await fake_auth.sessions.list(first.user_id)] == [
        first.session_id
    ]
    await fake_auth.sessions.enforce(event.user_id, event.session_id)
    assert await fake_auth.sessions.list(first.user_id) == []
    await fake_auth.sessions.enforce(event.user_id, event.session_id)  # again: nothing happens
    await fake_auth.sessions.logout(first.user_id, first.session_id)  # ended: no second event
    assert len(fake_auth.events.events) == 1
