"""Attacks on the gateway's HTTP surface, driven through a running fleet as an attacker would.

A second gateway process (``tight``) runs with small budgets and trusts one proxy (127.0.0.1),
so limits are reached in a few requests. Its requests always name their client, through
``X-Forwarded-For`` from the trusted proxy or from a peer of their own (a random 127.x.y.z
source address), so they never spend the budget of 127.0.0.1 that the other tests share.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from parley.fleet import Fleet

pytestmark = [pytest.mark.e2e]

User = Any  # tests/e2e/conftest.py: a registered user with an authenticated client
Register = Callable[[], Any]

BURST = 10
TIGHT = {
    "GATEWAY_USER_RATE": "1",
    "GATEWAY_USER_BURST": str(BURST),
    "GATEWAY_ADDRESS_RATE": "1",
    "GATEWAY_ADDRESS_BURST": str(BURST),
    "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
}


@pytest.fixture(scope="module")
def tight(fleet: Fleet) -> Iterator[str]:
    """The base URL of a gateway with budgets of 10 requests and a trusted proxy at 127.0.0.1."""
    name = f"gateway-tight-{uuid.uuid4().hex[:6]}"
    fleet.add("gateway", name=name, env=TIGHT)
    fleet.wait_ready([name])
    yield fleet.url(name)
    process = fleet.processes.pop(name)
    process.popen.terminate()
    process.popen.wait(20)


def an_address() -> str:
    """A documentation-range address of a client no other test uses."""
    return f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"


def a_peer() -> httpx.HTTPTransport:
    """A transport whose connections come from a loopback address of their own."""
    octets = (random.randrange(1, 255) for _ in range(3))
    return httpx.HTTPTransport(local_address="127." + ".".join(map(str, octets)))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


# --- item 5: GraphQL spends the REST budgets -------------------------------------------------


def test_rapid_graphql_requests_are_limited_per_user_as_rest_ones_are(
    tight: str, register: Register
) -> None:
    user = register()
    headers = {"Authorization": f"Bearer {user.access_token}", "X-Forwarded-For": an_address()}
    with httpx.Client(base_url=tight, headers=headers, timeout=15) as http:
        graphql = [http.post("/graphql", json={"query": "{ me { id } }"}) for _ in range(30)]
    assert 429 in statuses(graphql), statuses(graphql)
    assert set(statuses(graphql)) <= {200, 429}
    refused = next(r for r in graphql if r.status_code == 429)
    assert refused.json()["errors"][0]["extensions"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_aliased_mutations_in_one_request_are_each_counted(tight: str, register: Register) -> None:
    user = register()
    marks = " ".join(
        f'm{i}: markRead(conversationId: "{uuid.uuid4().hex}", seq: 1) {{ seq }}'
        for i in range(BURST + 5)
    )
    headers = {"Authorization": f"Bearer {user.access_token}", "X-Forwarded-For": an_address()}
    with httpx.Client(base_url=tight, headers=headers, timeout=15) as http:
        first = http.post("/graphql", json={"query": f"mutation {{ {marks} }}"})
        second = http.post("/graphql", json={"query": f"mutation {{ {marks} }}"})
    # The first spends the whole burst (15 mutations > 10); the second finds nothing left.
    assert first.status_code == 200, first.text
    assert first.headers["RateLimit-Remaining"] == "0"
    assert second.status_code == 429


def test_graphql_with_bad_tokens_is_limited_per_address(tight: str) -> None:
    headers = {"Authorization": "Bearer forged", "X-Forwarded-For": an_address()}
    with httpx.Client(base_url=tight, headers=headers, timeout=15) as http:
        answers = [http.post("/graphql", json={"query": "{ me { id } }"}) for _ in range(30)]
    assert set(statuses(answers)) == {401, 429}


# --- item 7: X-Forwarded-For is believed only from a trusted proxy ---------------------------


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_the_address_limit(
    tight: str,
) -> None:
    with httpx.Client(base_url=tight, transport=a_peer(), timeout=15) as http:
        answers = [
            http.get("/api/v1/users/me", headers={"X-Forwarded-For": an_address()})
            for _ in range(30)
        ]
    # Every request named another client, yet all counted against the one peer.
    assert 429 in statuses(answers), statuses(answers)


def test_behind_the_trusted_proxy_each_client_has_its_own_budget(tight: str) -> None:
    with httpx.Client(base_url=tight, timeout=15) as http:
        answers = [
            http.get("/api/v1/users/me", headers={"X-Forwarded-For": an_address()})
            for _ in range(30)
        ]
    assert set(statuses(answers)) == {401}


def test_behind_the_trusted_proxy_the_right_most_untrusted_hop_is_the_client(tight: str) -> None:
    client = an_address()
    with httpx.Client(base_url=tight, timeout=15) as http:
        answers = [
            # The client prepends a fresh lie each time; the proxy appends what it saw.
            http.get("/api/v1/users/me", headers={"X-Forwarded-For": f"{an_address()}, {client}"})
            for _ in range(30)
        ]
    assert 429 in statuses(answers), statuses(answers)
