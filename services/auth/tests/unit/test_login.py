"""Login: credentials, indistinguishable unknown users, throttling, lockout growth, rehash."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from auth.crypto.passwords import Argon2Parameters, PasswordHasher
from auth.domain.errors import InvalidCredentials, LoginThrottled
from auth.domain.lockout import LockoutPolicy
from auth.domain.sessions import ClientDetails

pytestmark = pytest.mark.unit

GOOD = "correct horse battery"


def mid() -> str:
    return str(uuid.uuid4())


async def _register(fake_auth: Any, name: str) -> Any:
    return await fake_auth.accounts.register(
        mid(), username=name, password=GOOD, display_name=name, client=ClientDetails()
    )


def test_lockouts_double_with_each_strike_up_to_the_ceiling() -> None:
    policy = LockoutPolicy(base=60.0, ceiling=600.0)
    assert [policy.lockout_for(s) for s in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert policy.lockout_for(10_000) == 600


async def test_login_is_case_insensitive_on_the_username(fake_auth: Any) -> None:
    registered = await _register(fake_auth, "Frank")
    tokens = await fake_auth.login.login(
        mid(), username="fRANK", password=GOOD, client=ClientDetails()
    )
    assert tokens.user_id == registered.user_id
    assert tokens.session_id != registered.session_id


async def test_an_unknown_user_fails_exactly_like_a_wrong_password(fake_auth: Any) -> None:
    await _register(fake_auth, "grace")
    with pytest.raises(InvalidCredentials) as wrong:
        await fake_auth.login.login(
            mid(), username="grace", password="nope nope nope", client=ClientDetails()
        )
    with pytest.raises(InvalidCredentials) as unknown:
        await fake_auth.login.login(
            mid(), username="nobody", password="nope nope nope", client=ClientDetails()
        )
    assert str(wrong.value) == str(unknown.value)
    assert fake_auth.guard.failures == {"grace": 1, "nobody": 1}


async def test_throttled_logins_are_refused_even_with_the_right_password(fake_auth: Any) -> None:
    await _register(fake_auth, "heidi")
    outcomes = []
    for _ in range(12):
        try:
            await fake_auth.login.login(
                mid(), username="heidi", password="bad password!", client=ClientDetails()
            )
        except (InvalidCredentials, LoginThrottled) as e:
            outcomes.append(type(e))
    assert outcomes[:9] == [InvalidCredentials] * 9
    assert outcomes[9:] == [LoginThrottled] * 3
    with pytest.raises(LoginThrottled) as refused:
        await fake_auth.login.login(mid(), username="heidi", password=GOOD, client=ClientDetails())
    assert refused.value.retry_after > 0


async def test_a_hash_with_old_parameters_is_upgraded_on_login(fake_auth: Any) -> None:
    registered = await _register(fake_auth, "ivan")
    old = PasswordHasher(Argon2Parameters(time_cost=2, memory_cost=16, parallelism=1))
    account = fake_auth.db.accounts[registered.user_id]
    fake_auth.db.accounts[registered.user_id] = account.rehashed(old.hash(GOOD))
    assert fake_auth.hasher.needs_rehash(fake_auth.db.accounts[registered.user_id].password_hash)
    await fake_auth.login.login(mid(), username="ivan", password=GOOD, client=ClientDetails())
    upgraded = fake_auth.db.accounts[registered.user_id].password_hash
    assert not fake_auth.hasher.needs_rehash(upgraded)
    assert fake_auth.hasher.verify(upgraded, GOOD)


async def test_a_burst_of_hashes_never_runs_more_at_once_than_the_memory_budget_allows() -> None:
    hasher = PasswordHasher(
        Argon2Parameters(time_cost=1, memory_cost=64, parallelism=1), memory_budget=128
    )
    assert hasher.slots == 2
    stored = hasher.hash(GOOD)
    results = await asyncio.gather(*(hasher.verify_async(stored, GOOD) for _ in range(12)))
    assert results == [True] * 12
    assert 1 <= hasher.peak <= 2


def test_a_budget_smaller_than_one_hash_still_lets_one_run() -> None:
    parameters = Argon2Parameters(time_cost=1, memory_cost=64, parallelism=1)
    hasher = PasswordHasher(parameters, memory_budget=8)
    assert hasher.slots == 1
