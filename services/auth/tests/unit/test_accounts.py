"""Accounts: username grammar, password policy, registration, password change, roles."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from auth.domain.accounts import check_password, check_username, common_passwords
from auth.domain.errors import Forbidden, InvalidCredentials, InvalidInput, UsernameTaken
from auth.domain.events import AccountRegistered, PasswordChanged, RoleChanged, SessionRevoked
from auth.domain.sessions import ClientDetails

pytestmark = pytest.mark.unit

GOOD = "correct horse battery"


def mid() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize("name", ["abc", "Alice_01", "a.b-c", "x" * 32, "9lives"])
def test_usernames_within_the_grammar_are_accepted(name: str) -> None:
    check_username(name)


@pytest.mark.parametrize("name", ["ab", "x" * 33, "_alice", "al ice", "al{ce}", "álvaro", ""])
def test_usernames_outside_the_grammar_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as e:
        check_username(name)
    assert e.value.field == "username"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short123", "at least 10"),
        ("AliceSmith", "username"),
        ("Password123", "common"),
        ("QWERTYUIOP", "common"),
        ("x" * 1025, "at most"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(password: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_password(password, username="alicesmith")


def test_the_shipped_common_password_list_is_loaded_and_lower_case() -> None:
    common = common_passwords()
    assert len(common) >= 100
    assert "password123" in common
    assert all(p == p.lower() for p in common)


async def test_register_creates_an_account_a_session_and_announces_it(fake_auth: Any) -> None:
    tokens = await fake_auth.accounts.register(
        mid(), username="Alice", password=GOOD, display_name="Alice", client=ClientDetails()
    )
    claims = await fake_auth.keys.verify(tokens.access_token)
    assert claims.user_id == tokens.user_id and claims.session_id == tokens.session_id
    assert claims.roles == ("user",)
    [event] = fake_auth.events.events
    assert isinstance(event, AccountRegistered) and event.username == "Alice"


async def test_usernames_are_unique_regardless_of_case(fake_auth: Any) -> None:
    await fake_auth.accounts.register(
        mid(), username="Alice", password=GOOD, display_name="A", client=ClientDetails()
    )
    with pytest.raises(UsernameTaken):
        await fake_auth.accounts.register(
            mid(), username="aLICE", password=GOOD, display_name="A", client=ClientDetails()
        )


async def test_a_replayed_register_returns_the_first_reply_and_creates_nothing(
    fake_auth: Any,
) -> None:
    message_id = mid()
    args = {"username": "bob", "password": GOOD, "display_name": "Bob", "client": ClientDetails()}
    first = await fake_auth.accounts.register(message_id, **args)
    again = await fake_auth.accounts.register(message_id, **args)
    assert again == first
    assert len(fake_auth.db.accounts) == 1
    assert len(fake_auth.sessions_store.by_secret) == 1


async def test_changing_the_password_revokes_every_other_session(fake_auth: Any) -> None:
    first = await fake_auth.accounts.register(
        mid(), username="carol", password=GOOD, display_name="C", client=ClientDetails()
    )
    other = await fake_auth.login.login(
        mid(), username="carol", password=GOOD, client=ClientDetails()
    )
    fake_auth.events.events.clear()
    await fake_auth.accounts.change_password(
        mid(), user_id=first.user_id, session_id=first.session_id, old=GOOD, new="a much newer one"
    )
    left = await fake_auth.sessions.list(first.user_id)
    assert [s.session_id for s in left] == [first.session_id]
    kinds = [(type(e), getattr(e, "session_id", None)) for e in fake_auth.events.events]
    assert (PasswordChanged, None) in kinds and (SessionRevoked, other.session_id) in kinds
    with pytest.raises(InvalidCredentials):
        await fake_auth.login.login(mid(), username="carol", password=GOOD, client=ClientDetails())


async def test_a_password_change_that_failed_halfway_completes_on_its_retry(fake_auth: Any) -> None:
    first = await fake_auth.accounts.register(
        mid(), username="erin", password=GOOD, display_name="E", client=ClientDetails()
    )
    other = await fake_auth.login.login(
        mid(), username="erin", password=GOOD, client=ClientDetails()
    )
    command = mid()
    change = {"user_id": first.user_id, "session_id": first.session_id, "old": GOOD}
    fake_auth.sessions_store.failing_revocations = 1
    with pytest.raises(ConnectionError):
        await fake_auth.accounts.change_password(command, **change, new="a much newer one")
    # The bus retries the same message: the other session must still end.
    await fake_auth.accounts.change_password(command, **change, new="a much newer one")
    left = await fake_auth.sessions.list(first.user_id)
    assert [s.session_id for s in left] == [first.session_id]
    assert other.session_id not in [s.session_id for s in left]
    with pytest.raises(InvalidCredentials):
        await fake_auth.login.login(mid(), username="erin", password=GOOD, client=ClientDetails())


async def test_changing_the_password_needs_the_current_one(fake_auth: Any) -> None:
    t = await fake_auth.accounts.register(
        mid(), username="dave", password=GOOD, display_name="D", client=ClientDetails()
    )
    with pytest.raises(InvalidCredentials):
        await fake_auth.accounts.change_password(
            mid(),
            user_id=t.user_id,
            session_id=t.session_id,
            old="not it at all",
            new="whatever9876",
        )


async def test_only_an_admin_changes_roles_and_the_permission_cache_follows(
    fake_auth: Any,
) -> None:
    admin = await fake_auth.accounts.register(
        mid(), username="root", password=GOOD, display_name="R", client=ClientDetails()
    )
    user = await fake_auth.accounts.register(
        mid(), username="erin", password=GOOD, display_name="E", client=ClientDetails()
    )
    with pytest.raises(Forbidden):
        await fake_auth.accounts.set_roles(
            mid(), actor_id=user.user_id, user_id=user.user_id, roles=("admin",)
        )
    account = fake_auth.db.accounts[admin.user_id]
    fake_auth.db.accounts[admin.user_id] = account.with_roles(("admin",))
    await fake_auth.permissions.forget(admin.user_id)
    assert not await fake_auth.permissions.check(user.user_id, "chat.moderate")
    await fake_auth.accounts.set_roles(
        mid(), actor_id=admin.user_id, user_id=user.user_id, roles=("user", "admin")
    )
    assert await fake_auth.permissions.check(user.user_id, "chat.moderate")
    assert isinstance(fake_auth.events.events[-1], RoleChanged)
