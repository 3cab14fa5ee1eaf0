"""The auth commands through the real bus, on the test cluster, with SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auth.crypto.tokens import SigningKey, TokenCodec
from auth.domain.errors import InvalidToken
from contracts import auth as wire_auth
from contracts import codec
from contracts.base import ErrorCode
from shared.bus import wire
from shared.bus.replies import ReplyFrame, reply_channel
from shared.pubsub import PubSub

from .conftest import (
    GOOD,
    AuthOverBus,
    events,
    fast_settings,
    name,
    password_changed_beside_a_second_session,
    register,
)

pytestmark = pytest.mark.integration


async def test_register_login_refresh_and_reuse_of_an_old_token_revokes_the_family(
    auth: AuthOverBus,
) -> None:
    username = name()
    registered = await register(auth, username)
    login = await auth.send(wire_auth.Login(username=username.upper(), password=GOOD))
    assert login.ok and login.result.user_id == registered.user_id
    first = login.result.refresh_token
    refreshed = await auth.send(wire_auth.Refresh(refresh_token=first))
    assert refreshed.ok and refreshed.result.session_id == login.result.session_id

    reused = await auth.send(wire_auth.Refresh(refresh_token=first))
    assert not reused.ok and reused.error.code == ErrorCode.UNAUTHENTICATED
    newest = await auth.send(wire_auth.Refresh(refresh_token=refreshed.result.refresh_token))
    assert not newest.ok and newest.error.code == ErrorCode.UNAUTHENTICATED

    revoked = [e for e in await events(auth) if isinstance(e, wire_auth.SessionRevoked)]
    assert [(e.session_id, e.reason) for e in revoked] == [(login.result.session_id, "token_reuse")]
    sessions = await auth.send(wire_auth.ListSessions(user_id=registered.user_id))
    assert [s.session_id for s in sessions.result.items] == [registered.session_id]


async def test_usernames_are_unique_case_insensitively(auth: AuthOverBus) -> None:
    username = name()
    await register(auth, username)
    again = await auth.send(
        wire_auth.Register(username=username.upper(), password=GOOD, display_name="Twin")
    )
    assert not again.ok and again.error.code == ErrorCode.CONFLICT


async def test_a_weak_password_is_refused_with_the_field_named(auth: AuthOverBus) -> None:
    reply = await auth.send(
        wire_auth.Register(username=name(), password="password123", display_name="W")
    )
    assert not reply.ok
    assert (reply.error.code, reply.error.field) == (ErrorCode.INVALID, "password")


async def test_gateways_verify_with_the_published_keys_and_refuse_bad_tokens(
    auth: AuthOverBus, settings: Any
) -> None:
    pair = await register(auth)
    keys_reply = await auth.send(wire_auth.GetPublicKeys())
    now = datetime.now(UTC)
    keys = {
        k.kid: SigningKey.from_public(k.kid, k.x, created_at=now) for k in keys_reply.result.keys
    }
    gateway = TokenCodec(
        issuer=settings.token_issuer, audience=settings.token_audience, lifetime=600
    )
    claims = gateway.verify(pair.access_token, keys, now=now)
    assert (claims.user_id, claims.session_id) == (pair.user_id, pair.session_id)

    active = auth.parts.keys.active()
    stranger = SigningKey.generate(now=now)
    forged = TokenCodec(
        issuer=settings.token_issuer, audience=settings.token_audience, lifetime=600
    )
    expired = auth.parts.keys.codec.issue(
        active, user_id=pair.user_id, session_id="s", roles=("user",), now=now - timedelta(hours=1)
    )
    wrong_kid = forged.issue(
        stranger, user_id=pair.user_id, session_id="s", roles=("admin",), now=now
    )
    same_kid_other_key = SigningKey(
        kid=active.kid, public=stranger.public, private=stranger.private, created_at=now
    )
    bad_signature = forged.issue(
        same_kid_other_key, user_id=pair.user_id, session_id="s", roles=("admin",), now=now
    )
    header, payload, _ = pair.access_token.split(".")
    none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + "."
    for bad in (expired, wrong_kid, bad_signature, none_alg, header + "." + payload + ".AAAA"):
        with pytest.raises(InvalidToken):
            gateway.verify(bad, keys, now=now)
        with pytest.raises(InvalidToken):
            await auth.parts.keys.verify(bad)


async def test_key_rotation_keeps_live_tokens_valid(auth: AuthOverBus, settings: Any) -> None:
    before = await register(auth)
    old_kid = auth.parts.keys.active().kid
    await auth.parts.keys.rotate()
    after = await register(auth)
    keys_reply = await auth.send(wire_auth.GetPublicKeys())
    kids = [k.kid for k in keys_reply.result.keys]
    assert kids[1:] == [old_kid] and kids[0] != old_kid
    now = datetime.now(UTC)
    keys = {
        k.kid: SigningKey.from_public(k.kid, k.x, created_at=now) for k in keys_reply.result.keys
    }
    gateway = TokenCodec(
        issuer=settings.token_issuer, audience=settings.token_audience, lifetime=600
    )
    assert gateway.verify(before.access_token, keys, now=now).kid == old_kid
    assert gateway.verify(after.access_token, keys, now=now).kid == kids[0]
    rotated = [e for e in await events(auth) if isinstance(e, wire_auth.SigningKeysRotated)]
    assert [k.kid for k in rotated[-1].keys] == kids


async def test_fifty_wrong_passwords_lock_that_address_out_and_not_the_owner(
    auth: AuthOverBus,
) -> None:
    username = name()
    await register(auth, username)
    # An address of its own: the per-address limit (50 failures in 15 minutes) outlives a run on
    # a reused test cluster, and this test must see only the per-username one.
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    codes = []
    for _ in range(50):
        reply = await auth.send(
            wire_auth.Login(
                username=username,
                password="wrong password!",
                client=wire_auth.ClientInfo(address=address),
            )
        )
        codes.append((reply.error.code, reply.error.retry_after))
    assert [c for c, _ in codes[:9]] == [ErrorCode.UNAUTHENTICATED] * 9
    assert all(c == ErrorCode.RATE_LIMITED and r and r > 0 for c, r in codes[9:])
    here = wire_auth.ClientInfo(address=address)
    right = await auth.send(wire_auth.Login(username=username, password=GOOD, client=here))
    assert not right.ok and right.error.code == ErrorCode.RATE_LIMITED
    elsewhere = wire_auth.ClientInfo(address=f"2001:db8::{uuid.uuid4().hex[:4]}")
    owner = await auth.send(wire_auth.Login(username=username, password=GOOD, client=elsewhere))
    assert owner.ok


async def test_parallel_wrong_passwords_never_check_more_than_the_budget(
    auth: AuthOverBus,
) -> None:
    username = name()
    await register(auth, username)
    here = wire_auth.ClientInfo(address=f"2001:db8::{uuid.uuid4().hex[:4]}")
    wrong = wire_auth.Login(username=username, password="wrong password!", client=here)
    replies = await asyncio.gather(*(auth.send(wrong) for _ in range(30)))
    codes = [r.error.code for r in replies]
    assert set(codes) == {ErrorCode.UNAUTHENTICATED, ErrorCode.RATE_LIMITED}
    assert codes.count(ErrorCode.UNAUTHENTICATED) <= 9  # the tenth failure answers the lockout


@pytest.mark.parametrize("settings", [fast_settings(login_user_failures=3, login_slowdown=0.5)])
async def test_guesses_from_many_addresses_slow_the_username_down_without_locking_it(
    auth: AuthOverBus,
) -> None:
    username = name()
    await register(auth, username)

    def somewhere() -> wire_auth.ClientInfo:
        return wire_auth.ClientInfo(address=f"2001:db8::{uuid.uuid4().hex[:4]}")

    for _ in range(4):  # three failures, then the first check of the slowed-down username
        guess = wire_auth.Login(username=username, password="nope nope!", client=somewhere())
        await auth.send(guess)
    first = await auth.send(wire_auth.Login(username=username, password=GOOD, client=somewhere()))
    assert first.error.code == ErrorCode.RATE_LIMITED and 0 < first.error.retry_after <= 0.5
    await asyncio.sleep(first.error.retry_after + 0.05)
    later = await auth.send(wire_auth.Login(username=username, password=GOOD, client=somewhere()))
    assert later.ok


async def test_wrong_old_passwords_spend_the_login_budget(auth: AuthOverBus) -> None:
    username = name()
    tokens = await register(auth, username)
    here = wire_auth.ClientInfo(address=f"2001:db8::{uuid.uuid4().hex[:4]}")
    codes = []
    for _ in range(12):
        reply = await auth.send(
            wire_auth.ChangePassword(
                user_id=tokens.user_id,
                session_id=tokens.session_id,
                old_password="not the password",
                new_password="a brand new secret",
                client=here,
            )
        )
        codes.append(reply.error.code)
    assert codes[:9] == [ErrorCode.UNAUTHENTICATED] * 9
    assert codes[9:] == [ErrorCode.RATE_LIMITED] * 3
    login = await auth.send(wire_auth.Login(username=username, password=GOOD, client=here))
    assert login.error.code == ErrorCode.RATE_LIMITED


async def test_an_unknown_username_is_answered_like_a_wrong_password(auth: AuthOverBus) -> None:
    username = name()
    await register(auth, username)
    wrong = await auth.send(wire_auth.Login(username=username, password="wrong password!"))
    unknown = await auth.send(wire_auth.Login(username=name(), password="wrong password!"))
    assert wrong.error == unknown.error


@pytest.mark.parametrize("settings", [fast_settings(lockout_base=0.4)])
async def test_each_lockout_is_longer_than_the_one_before(auth: AuthOverBus) -> None:
    username = name()
    await register(auth, username)
    wrong = wire_auth.Login(username=username, password="wrong password!")
    for _ in range(10):
        first = await auth.send(wrong)
    assert first.error.code == ErrorCode.RATE_LIMITED
    await asyncio.sleep(first.error.retry_after + 0.05)
    second = await auth.send(wrong)
    assert second.error.code == ErrorCode.RATE_LIMITED
    assert second.error.retry_after > first.error.retry_after * 1.5


async def test_a_replayed_register_gives_the_same_reply_and_creates_nothing_twice(
    auth: AuthOverBus,
) -> None:
    command = auth.parts.commands.transit.seal(
        wire_auth.Register(username=name(), password=GOOD, display_name="Once")
    )
    channel = reply_channel("gateway", f"replay{uuid.uuid4().hex[:8]}")
    envelope = auth.client_publisher.envelope_for(
        command, deadline=datetime.now(UTC) + timedelta(seconds=10), reply_to=channel
    )
    key = auth.commands_spec.key_for(command.partition_value() or envelope.id)
    fields = wire.entry_fields(envelope, command)
    async with PubSub(auth.redis).subscribe(channel, ReplyFrame) as replies:
        await asyncio.sleep(0.1)
        await auth.client_publisher.append(key, fields)  # the original
        await auth.client_publisher.append(key, fields)  # a duplicate: deduplicated by the bus
        await auth.client_publisher.append(key, {**fields, wire.REPLAY: b"1"})  # a redrive: runs
        frames = []
        async with asyncio.timeout(10):
            async for frame in replies:
                frames.append(frame)
                if len(frames) == 2:
                    break
    results = [codec.decode(wire_auth.Register.reply_type(), f.payload) for f in frames]
    assert results[0].ok and results[1].ok
    # Each answer seals the tokens afresh (a new nonce): the same tokens inside.
    opened = [auth.parts.commands.transit.open(r.result) for r in results]
    assert opened[0] == opened[1]
    registered = [e for e in await events(auth) if isinstance(e, wire_auth.AccountRegistered)]
    assert len(registered) == 1
    sessions = await auth.send(wire_auth.ListSessions(user_id=results[0].result.user_id))
    assert len(sessions.result.items) == 1


async def test_roles_drive_permissions_and_a_role_change_invalidates_the_cache(
    auth: AuthOverBus,
) -> None:
    admin = await register(auth)
    user = await register(auth)
    check = wire_auth.CheckPermission(user_id=user.user_id, permission="chat.moderate")
    assert (await auth.send(check)).result.allowed is False  # now cached
    denied = await auth.send(
        wire_auth.SetRoles(actor_id=user.user_id, user_id=user.user_id, roles=["admin"])
    )
    assert denied.error.code == ErrorCode.FORBIDDEN
    async with auth.database.engine.begin() as conn:
        from sqlalchemy import update

        from auth.store.tables import accounts

        await conn.execute(
            update(accounts).where(accounts.c.user_id == admin.user_id).values(roles="user,admin")
        )
    await auth.parts.commands.permissions.forget(admin.user_id)
    granted = await auth.send(
        wire_auth.SetRoles(actor_id=admin.user_id, user_id=user.user_id, roles=["user", "admin"])
    )
    assert granted.ok, granted.error
    assert (await auth.send(check)).result.allowed is True
    assert any(isinstance(e, wire_auth.RoleChanged) for e in await events(auth))


async def test_change_password_revokes_the_other_sessions_and_logout_ends_one(
    auth: AuthOverBus,
) -> None:
    first, second = await password_changed_beside_a_second_session(auth)
    gone = await auth.send(wire_auth.Refresh(refresh_token=second.refresh_token))
    assert gone.error.code == ErrorCode.UNAUTHENTICATED
    assert (await auth.send(wire_auth.Refresh(refresh_token=first.refresh_token))).ok
    await auth.send(wire_auth.Logout(user_id=first.user_id, session_id=first.session_id))
    listed = await auth.send(wire_auth.ListSessions(user_id=first.user_id))
    assert listed.result.items == []
    reasons = {e.reason for e in await events(auth) if isinstance(e, wire_auth.SessionRevoked)}
    assert reasons == {"password_changed", "logout"}


async def test_passwords_and_tokens_cross_the_bus_only_sealed(auth: AuthOverBus) -> None:
    username = name()
    tokens = await register(auth, username)
    stored = b""
    for stream in auth.commands_spec.partition_keys():
        for _, fields in await auth.redis.xrange(stream):
            stored += b"".join(fields.values())
    assert username.encode() in stored  # the scan sees the command ...
    for secret in (GOOD, tokens.access_token, tokens.refresh_token):
        assert secret.encode() not in stored  # ... but not its secrets


async def test_a_password_sent_in_clear_is_refused_and_never_checked(auth: AuthOverBus) -> None:
    username = name()
    await register(auth, username)
    clear = wire_auth.Login(username=username, password=GOOD)
    reply = await auth.requester.request(clear, timeout=5.0)
    assert not reply.ok and reply.error.code == ErrorCode.INVALID
    assert "not sealed" in reply.error.message
