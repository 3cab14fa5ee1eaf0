"""Attacks on the gateway's HTTP surface, driven through a running fleet as an attacker would.

A second gateway process (``tight``) runs with small budgets and trusts one proxy (127.0.0.1),
so limits are reached in a few requests. Its requests always name their client, through
``X-Forwarded-For`` from the trusted proxy or from a peer of their own (a random 127.x.y.z
source address), so they never spend the budget of 127.0.0.1 that the other tests share.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from parley.fleet import Fleet

from .conftest import next_frame

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
    "GATEWAY_ENVIRONMENT": "production",
    "GATEWAY_HSTS": "true",
}


@pytest.fixture(scope="module")
def tight(fleet: Fleet) -> Iterator[str]:
    """The base URL of a production gateway with budgets of 10 requests, a trusted proxy at
    127.0.0.1 and HSTS."""
    name = f"gateway-tight-{uuid.uuid4().hex[:6]}"
    # Production wants its transit keys given: the development fleet's own (shared.transit,
    # kept in the fleet's PARLEY_HOME).
    keys = (fleet.home / ".parley" / "transit-keys").read_text().strip()
    fleet.add("gateway", name=name, env={**TIGHT, "GATEWAY_TRANSIT_KEYS": keys})
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


def a_group(owner: User, *members: User) -> str:
    body = {"kind": "group", "title": "t", "member_ids": [m.id for m in members]}
    created = owner.post("/conversations", body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def at_once(send: Callable[[], httpx.Response], count: int = 3 * BURST) -> list[httpx.Response]:
    """``count`` requests sent together (16 at a time): within a second or two however slow the
    machine, so a budget refilling at 1/s cannot keep up with them."""
    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


# --- item 5: GraphQL spends the REST budgets -------------------------------------------------


def test_rapid_graphql_requests_are_limited_per_user_as_rest_ones_are(
    tight: str, register: Register
) -> None:
    user = register()
    headers = {"Authorization": f"Bearer {user.access_token}", "X-Forwarded-For": an_address()}
    with httpx.Client(base_url=tight, headers=headers, timeout=15) as http:
        graphql = at_once(lambda: http.post("/graphql", json={"query": "{ me { id } }"}))
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
        answers = at_once(lambda: http.post("/graphql", json={"query": "{ me { id } }"}))
    assert set(statuses(answers)) == {401, 429}


# --- item 7: X-Forwarded-For is believed only from a trusted proxy ---------------------------


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_the_address_limit(
    tight: str,
) -> None:
    with httpx.Client(base_url=tight, transport=a_peer(), timeout=15) as http:
        answers = at_once(
            lambda: http.get("/api/v1/users/me", headers={"X-Forwarded-For": an_address()})
        )
    # Every request named another client, yet all counted against the one peer.
    assert 429 in statuses(answers), statuses(answers)


def test_by_default_a_forwarded_for_even_from_loopback_is_not_the_client(fleet: Fleet) -> None:
    # uvicorn's own proxy-header handling believes 127.0.0.1 by default: it must be off.
    request_id = f"xff-{uuid.uuid4().hex}"
    spoofed = an_address()
    headers = {"X-Forwarded-For": spoofed, "X-Request-ID": request_id}
    assert httpx.get(f"{fleet.api}/api/v1/users/me", headers=headers, timeout=10).status_code == 401

    def logged() -> str:
        return next(
            (line for line in fleet.log_tail("gateway", 500).splitlines() if request_id in line),
            "",
        )

    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = logged()
    assert '"client": "127.0.0.1"' in line, line
    assert spoofed not in line


def test_behind_the_trusted_proxy_each_client_has_its_own_budget(tight: str) -> None:
    with httpx.Client(base_url=tight, timeout=15) as http:
        answers = at_once(
            lambda: http.get("/api/v1/users/me", headers={"X-Forwarded-For": an_address()})
        )
    assert set(statuses(answers)) == {401}


def test_behind_the_trusted_proxy_the_right_most_untrusted_hop_is_the_client(tight: str) -> None:
    client = an_address()
    with httpx.Client(base_url=tight, timeout=15) as http:
        # The client prepends a fresh lie each time; the proxy appends what it saw.
        answers = at_once(
            lambda: http.get(
                "/api/v1/users/me", headers={"X-Forwarded-For": f"{an_address()}, {client}"}
            )
        )
    assert 429 in statuses(answers), statuses(answers)


# --- item 15: no existence oracle for conversations --------------------------------------------


def _routes(conv: str, me: str, other: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/conversations/{conv}"
    return [
        ("GET", base, None),
        ("POST", f"{base}/members", {"member_ids": [me]}),
        ("DELETE", f"{base}/members/{me}", None),
        ("DELETE", f"{base}/members/{other}", None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"body": "hi", "client_msg_id": uuid.uuid4().hex}),
        ("PATCH", f"{base}/messages/1", {"body": "edited"}),
        ("DELETE", f"{base}/messages/1", None),
        ("POST", f"{base}/read", {"seq": 1}),
    ]


def _answer(user: User, method: str, path: str, body: Any, conv: str) -> tuple[int, str]:
    r = user.http.request(method, path, json=body)
    return r.status_code, r.text.replace(conv, "<id>")


def test_a_non_member_cannot_tell_an_existing_conversation_from_an_absent_one(
    register: Register,
) -> None:
    alice, bob, mallory = register(), register(), register()
    conv = a_group(alice, bob)
    assert alice.post(
        f"/conversations/{conv}/messages", {"body": "x", "client_msg_id": uuid.uuid4().hex}
    ).is_success
    absent = uuid.uuid4().hex
    for (method, path, body), (_, absent_path, absent_body) in zip(
        _routes(conv, mallory.id, bob.id), _routes(absent, mallory.id, bob.id), strict=True
    ):
        existing = _answer(mallory, method, path, body, conv)
        missing = _answer(mallory, method, absent_path, absent_body, absent)
        assert existing == missing, (method, path)
        assert existing[0] == 404, (method, path, existing)
    # Nothing the attempts did reached the conversation.
    members = alice.get(f"/conversations/{conv}").json()["member_ids"]
    assert sorted(members) == sorted([alice.id, bob.id])


def test_websocket_frames_answer_a_non_member_as_for_an_absent_conversation(
    fleet: Fleet, register: Register
) -> None:
    alice, mallory = register(), register()
    conv = a_group(alice, register())
    absent = uuid.uuid4().hex
    frames = [
        {"type": "read", "conversation_id": "<id>", "seq": 1},
        {"type": "typing", "conversation_id": "<id>"},
        {"type": "view", "conversation_id": "<id>"},
    ]
    with connect(f"{fleet.ws}?token={mallory.access_token}", open_timeout=10) as ws:
        for template in frames:
            answers = []
            for target in (conv, absent):
                ws.send(json.dumps({**template, "conversation_id": target}))
                error = next_frame(ws, {"error"})
                answers.append(json.dumps(error, sort_keys=True).replace(target, "<id>"))
            assert answers[0] == answers[1], template
            assert '"not_found"' in answers[0]


# --- item 17: integers out of range are 422, never 500 -----------------------------------------

TOO_BIG = [2**31, 2**63, 1467638696730381254656]


def test_out_of_range_integers_are_refused_with_422_in_bodies_paths_and_queries(
    register: Register,
) -> None:
    alice = register()
    conv = a_group(alice, register())
    for number in TOO_BIG:
        answers = [
            alice.post(f"/conversations/{conv}/read", {"seq": number}),
            alice.http.patch(f"/conversations/{conv}/messages/{number}", json={"body": "x"}),
            alice.http.delete(f"/conversations/{conv}/messages/{number}"),
            alice.get(f"/conversations/{conv}/messages", params={"before": number}),
            alice.get(f"/conversations/{conv}/messages", params={"after": number}),
            alice.get("/conversations", params={"limit": number}),
        ]
        for r in answers:
            assert r.status_code == 422, (r.request.url, r.status_code, r.text)
            assert r.json()["error"]["code"] == "invalid"
    # The largest accepted value works, and the marker stays a valid number.
    assert alice.post(f"/conversations/{conv}/read", {"seq": 2**31 - 1}).status_code == 200
    assert alice.get(f"/conversations/{conv}").status_code == 200


def test_an_out_of_range_seq_in_a_websocket_frame_is_an_invalid_frame(
    fleet: Fleet, register: Register
) -> None:
    alice = register()
    conv = a_group(alice, register())
    with connect(f"{fleet.ws}?token={alice.access_token}", open_timeout=10) as ws:
        for number in TOO_BIG:
            ws.send(json.dumps({"type": "read", "conversation_id": conv, "seq": number}))
            assert next_frame(ws, {"error"})["code"] == "invalid"
        ws.send(json.dumps({"type": "ping", "id": "still-up"}))
        assert next_frame(ws, {"pong"})["id"] == "still-up"


# --- item 14: the admin surface is not public; security headers; no introspection in production


def test_metrics_and_readiness_details_are_on_the_admin_port_only(fleet: Fleet) -> None:
    public = httpx.get(f"{fleet.api}/metrics", timeout=10)
    assert public.status_code == 404
    ready = httpx.get(f"{fleet.api}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "service": "gateway"}
    assert httpx.get(f"{fleet.api}/health/live", timeout=10).status_code == 200
    admin = fleet.admin_url("gateway")
    assert admin != fleet.api
    assert "parley_" in httpx.get(f"{admin}/metrics", timeout=10).text
    detailed = httpx.get(f"{admin}/health/ready", timeout=10).json()
    assert detailed["service"] == "gateway" and detailed["checks"]
    # The admin listener serves nothing of the API.
    assert httpx.get(f"{admin}/api/v1/users/me", timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/health/live", "/openapi.json", "/nope"])
def test_every_answer_carries_the_security_headers(fleet: Fleet, path: str) -> None:
    r = httpx.get(f"{fleet.api}{path}", timeout=10)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "strict-transport-security" not in r.headers  # not behind TLS here: off by default


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_may_load_only_from_the_gateway(fleet: Fleet, path: str) -> None:
    r = httpx.get(f"{fleet.api}{path}", timeout=10)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp and "*" not in csp
    assert "https://" not in r.text  # the pages name no CDN


def test_a_production_gateway_refuses_introspection_and_sends_hsts(
    tight: str, register: Register
) -> None:
    user = register()
    headers = {"Authorization": f"Bearer {user.access_token}", "X-Forwarded-For": an_address()}
    r = httpx.post(
        f"{tight}/graphql",
        json={"query": "{ __schema { types { name } } }"},
        headers=headers,
        timeout=10,
    )
    assert r.json()["data"] is None
    assert "introspection" in r.json()["errors"][0]["message"].lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")
