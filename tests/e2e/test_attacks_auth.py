"""Attacks on accounts through the public API, and what an attacker could read in Redis afterwards.

Every test plays the attacker (or the nosy operator with a Redis login) against the whole fleet.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from parley.cluster import LocalCluster
from parley.fleet import Fleet

pytestmark = [pytest.mark.e2e]

User = Any  # tests/e2e/conftest.py: a registered user with an authenticated client
Register = Callable[[], Any]
Eventually = Callable[..., None]


def _from(address: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (another loopback host: another client)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def _login(fleet: Fleet, username: str, password: str, *, http: httpx.Client | None = None) -> Any:
    body = {"username": username, "password": password}
    if http is None:
        return httpx.post(f"{fleet.api}/api/v1/auth/login", json=body, timeout=30)
    return http.post(f"{fleet.api}/api/v1/auth/login", json=body)


def _forms(secret: str) -> Iterator[bytes]:
    """The secret as stored verbatim, base64 (both alphabets) or hex."""
    raw = secret.encode()
    yield raw
    yield base64.b64encode(raw).rstrip(b"=")
    yield base64.urlsafe_b64encode(raw).rstrip(b"=")
    yield raw.hex().encode()


def _values(r: redis.Redis, key: bytes) -> Iterator[bytes]:
    """Every byte string stored under ``key``, whatever its type (the key's name too)."""
    yield key
    kind = r.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        yield r.get(key) or b""
    elif kind == "hash":
        for field, value in r.hgetall(key).items():
            yield field
            yield value
    elif kind == "list":
        yield from r.lrange(key, 0, -1)
    elif kind == "set":
        yield from r.smembers(key)
    elif kind == "zset":
        yield from (member for member, _ in r.zrange(key, 0, -1, withscores=True))
    elif kind == "stream":
        for _, fields in r.xrange(key):
            for field, value in fields.items():
                yield field
                yield value


def _everything_in(cluster: LocalCluster) -> list[bytes]:
    """Every key and value held by every master of ``cluster``."""
    found: list[bytes] = []
    username, password = cluster.credentials("admin")  # the e2e cluster refuses `default`
    for node in cluster.status().nodes:
        if node.role != "master":
            continue
        with redis.Redis(
            host=cluster.host, port=node.port, username=username, password=password
        ) as r:
            for key in r.scan_iter(count=1000):
                found.extend(_values(r, key))
    return found


def test_no_password_or_token_can_be_read_anywhere_in_redis(
    fleet: Fleet, e2e_cluster: LocalCluster, register: Register
) -> None:
    alice = register()
    secrets = [alice.password, alice.access_token, alice.refresh_token]
    logged_in = _login(fleet, alice.username, alice.password)
    assert logged_in.status_code == 200, logged_in.text
    secrets += [logged_in.json()["access_token"], logged_in.json()["refresh_token"]]
    refreshed = httpx.post(
        f"{fleet.api}/api/v1/auth/refresh",
        json={"refresh_token": logged_in.json()["refresh_token"]},
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text
    secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
    new_password = f"new-{uuid.uuid4().hex}"
    changed = alice.post(
        "/auth/password", {"old_password": alice.password, "new_password": new_password}
    )
    assert changed.status_code == 204, changed.text
    secrets.append(new_password)
    assert _login(fleet, alice.username, new_password).status_code == 200
    # A JWT's signature alone identifies the token: look for it too.
    secrets += [token.rsplit(".", 1)[-1] for token in secrets if token.count(".") == 2]

    stored = _everything_in(e2e_cluster)
    assert stored, "the scan found nothing at all"
    leaks = [
        secret
        for secret in secrets
        if any(form in value for value in stored for form in _forms(secret))
    ]
    assert not leaks, f"{len(leaks)} of {len(secrets)} secrets are readable in Redis"


def test_guessing_the_old_password_on_a_password_change_is_locked_out(
    fleet: Fleet, register: Register
) -> None:
    alice = register()
    statuses = [
        alice.post(
            "/auth/password",
            {"old_password": f"guess-{i}-{uuid.uuid4().hex}", "new_password": "x" * 20},
        ).status_code
        for i in range(15)
    ]
    assert statuses[0] == 401
    assert 429 in statuses, f"15 wrong old passwords were all answered: {statuses}"
    assert set(statuses) <= {401, 429}
    # The guesses count for the account: logging in with guesses from the same address is
    # refused as well, however right the password.
    assert _login(fleet, alice.username, alice.password).status_code == 429


def test_a_stranger_guessing_elsewhere_cannot_lock_the_owner_out(
    fleet: Fleet, register: Register
) -> None:
    alice = register()
    with _from("127.0.0.2") as attacker:
        answers = [
            _login(fleet, alice.username, f"guess-{uuid.uuid4().hex}", http=attacker).status_code
            for _ in range(25)
        ]
        assert 429 in answers, answers  # the attacker is limited ...
        assert _login(fleet, alice.username, alice.password, http=attacker).status_code == 429
    with _from("127.0.0.3") as owner:
        mine = _login(fleet, alice.username, alice.password, http=owner)
    assert mine.status_code == 200, mine.text  # ... the owner, elsewhere, is not


def test_parallel_guesses_cannot_exceed_the_failure_budget(
    fleet: Fleet, register: Register
) -> None:
    alice = register()
    with _from("127.0.0.4") as attacker, ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(
            pool.map(
                lambda _: (
                    _login(
                        fleet, alice.username, f"guess-{uuid.uuid4().hex}", http=attacker
                    ).status_code
                ),
                range(24),
            )
        )
    checked = answers.count(401)
    # Ten failures per username and address: the eleventh and later were refused unchecked.
    assert checked <= 10, f"{checked} guesses were checked, the budget is 10: {answers}"
    assert answers.count(429) == 24 - checked


def _gauge(fleet: Fleet, name: str) -> float:
    text = httpx.get(f"{fleet.url('auth')}/metrics", timeout=10).text
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    assert match, f"{name} is not among auth's metrics"
    return float(match.group(1))


def test_a_burst_of_logins_all_succeed_within_the_hashing_memory_bound(
    fleet: Fleet, register: Register
) -> None:
    users = [register() for _ in range(6)]
    bound = _gauge(fleet, "parley_auth_password_hash_slots")
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(
            pool.map(
                lambda i: _login(fleet, users[i % 6].username, users[i % 6].password),
                range(24),
            )
        )
    assert [a.status_code for a in answers] == [200] * 24
    assert 1 <= _gauge(fleet, "parley_auth_password_hashes_peak") <= bound


def test_ending_the_other_sessions_keeps_only_this_one(
    fleet: Fleet, register: Register, eventually: Eventually
) -> None:
    alice = register()
    other = _login(fleet, alice.username, alice.password).json()
    third = _login(fleet, alice.username, alice.password).json()
    r = alice.http.delete("/auth/sessions")
    assert r.status_code == 200, r.text
    assert r.json() == {"ended": 2}

    def refused(token: str) -> bool:
        me = httpx.get(f"{fleet.api}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        return me.status_code == 401

    eventually(lambda: refused(other["access_token"]) and refused(third["access_token"]))
    again = httpx.post(
        f"{fleet.api}/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert again.status_code == 401
    assert alice.get("/users/me").status_code == 200
    listed = alice.get("/auth/sessions").json()["items"]
    assert [s["current"] for s in listed] == [True]
