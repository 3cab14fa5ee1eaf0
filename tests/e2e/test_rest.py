"""The fleet over REST, as a client uses it: accounts, profiles, conversations, notifications."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from parley.fleet import Fleet

pytestmark = [pytest.mark.e2e]

User = Any  # tests/e2e/conftest.py: a registered user with an authenticated client
Register = Callable[[], Any]
Eventually = Callable[..., None]


def _post(user: User, conv: str, body: str, **extra: object) -> httpx.Response:
    payload = {"body": body, "client_msg_id": uuid.uuid4().hex, **extra}
    return user.post(f"/conversations/{conv}/messages", payload)


def test_three_users_talk_in_a_group_and_history_comes_back_in_order(register: Register) -> None:
    alice, bob, carol = register(), register(), register()
    r = alice.post(
        "/conversations", {"kind": "group", "title": "trip", "member_ids": [bob.id, carol.id]}
    )
    assert r.status_code == 201, r.text
    conv = r.json()
    assert sorted(conv["member_ids"]) == sorted([alice.id, bob.id, carol.id])

    sent = [_post(u, conv["id"], f"m{i}") for i, u in enumerate([alice, bob, carol, alice, bob])]
    assert [s.status_code for s in sent] == [201] * 5
    seqs = [s.json()["seq"] for s in sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5

    history = carol.get(f"/conversations/{conv['id']}/messages", params={"limit": 50}).json()
    assert [m["body"] for m in history["items"]] == ["m0", "m1", "m2", "m3", "m4"]
    first = history["items"][0]
    assert set(first) >= {
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "body",
        "client_msg_id",
        "mentions",
        "created_at",
        "edited_at",
        "deleted",
    }
    after = carol.get(f"/conversations/{conv['id']}/messages", params={"after": seqs[2]}).json()
    assert [m["seq"] for m in after["items"]] == seqs[3:]


def test_a_retried_post_returns_the_original_message(register: Register) -> None:
    alice, bob = register(), register()
    conv = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]}).json()
    payload = {"body": "only once", "client_msg_id": uuid.uuid4().hex}
    first = alice.post(f"/conversations/{conv['id']}/messages", payload)
    again = alice.post(f"/conversations/{conv['id']}/messages", payload)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    items = bob.get(f"/conversations/{conv['id']}/messages").json()["items"]
    assert [m["body"] for m in items] == ["only once"]


def test_an_outsider_can_neither_read_nor_post(register: Register) -> None:
    alice, bob, mallory = register(), register(), register()
    conv = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]}).json()
    assert mallory.get(f"/conversations/{conv['id']}/messages").status_code == 404
    assert mallory.get(f"/conversations/{conv['id']}").status_code == 404
    assert _post(mallory, conv["id"], "let me in").status_code in (403, 404)


def test_unread_counts_and_notifications_of_an_offline_member_clear_on_read(
    register: Register, eventually: Eventually
) -> None:
    alice, bob = register(), register()
    conv = alice.post(
        "/conversations", {"kind": "group", "title": "t", "member_ids": [bob.id]}
    ).json()
    for i in range(3):
        assert _post(alice, conv["id"], f"hello {i}").status_code == 201

    listed = {c["id"]: c for c in bob.get("/conversations").json()["items"]}
    assert listed[conv["id"]]["unread_count"] == 3
    assert listed[conv["id"]]["last_message"]["body"] == "hello 2"
    eventually(lambda: bob.get("/notifications/unread-count").json()["count"] >= 1)
    notes = bob.get("/notifications").json()["items"]
    assert any(n["conversation_id"] == conv["id"] and not n["read"] for n in notes)
    assert alice.get("/notifications/unread-count").json()["count"] == 0  # not the sender

    last = listed[conv["id"]]["last_seq"]
    r = bob.post(f"/conversations/{conv['id']}/read", {"seq": last})
    assert r.status_code == 200, r.text
    assert r.json()["unread_count"] == 0
    eventually(lambda: bob.get("/notifications/unread-count").json()["count"] == 0)


def test_a_block_stops_direct_conversations(register: Register, eventually: Eventually) -> None:
    alice, bob = register(), register()
    assert bob.post("/users/me/blocks", {"user_id": alice.id}).status_code in (200, 201, 204)

    def refused() -> bool:
        r = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]})
        return r.status_code == 403

    eventually(refused)


def test_refresh_works_and_a_revoked_session_is_refused(
    fleet: Any, register: Register, eventually: Eventually
) -> None:
    alice = register()
    r = httpx.post(f"{fleet.api}/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    reused = httpx.post(
        f"{fleet.api}/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert reused.status_code == 401  # a rotated token is spent; its family is revoked

    def refused() -> bool:
        me = httpx.get(f"{fleet.api}/api/v1/users/me", headers={"Authorization": f"Bearer {fresh}"})
        return me.status_code == 401

    eventually(refused)


def test_logout_refuses_the_token_from_then_on(register: Register) -> None:
    alice = register()
    assert alice.get("/users/me").status_code == 200
    assert alice.post("/auth/logout").status_code == 204
    assert alice.get("/users/me").status_code == 401


def test_flooding_gets_429_with_retry_after(register: Register) -> None:
    alice = register()
    # Sixteen at a time: on a slow machine, sequential requests could be spaced out enough
    # for the refill (20 a second after a burst of 60) to keep up with them.
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: alice.get("/users/me"), range(150)))
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "150 requests in a burst were all admitted"
    assert int(limited[0].headers["Retry-After"]) >= 0
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert all(r.status_code in (200, 304, 429) for r in statuses)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/auth/register", "{not json", 400),
        ("post", "/auth/register", {"username": "x"}, 422),
        ("post", "/auth/login", {"username": "a" * 5000, "password": "p"}, 422),
        ("post", "/conversations", {"kind": "triangle", "member_ids": []}, 422),
        ("get", "/users/me", None, 200),
        ("get", "/conversations/not-a-conversation/messages", None, 404),
        ("post", "/conversations/x/read", {"seq": "seven"}, 422),
    ],
)
def test_malformed_requests_get_clear_errors_and_never_a_5xx(
    register: Register, method: str, path: str, body: object, status: int
) -> None:
    alice = register()
    if isinstance(body, str):
        r = alice.http.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    else:
        r = alice.http.request(method, path, json=body)
    assert r.status_code == status, r.text
    if status >= 400:
        error = r.json()["error"]
        assert error["code"] and error["message"]


def test_an_idle_keep_alive_connection_stays_open_for_the_next_request(fleet: Fleet) -> None:
    # A load balancer reuses idle upstream connections for up to 60 s; a server that closes one
    # first (uvicorn's default: after 5 s) fails the request sent on it. One connection, idle
    # for longer than that default, then a second request on it.
    host, port = fleet.api.removeprefix("http://").split(":")
    request = f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        assert read_response(conn).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)
        conn.sendall(request)
        assert read_response(conn).startswith(b"HTTP/1.1 200")  # b"" had the server closed it


def read_response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head and ``Content-Length`` body), however it is split into
    segments; b"" when the server closed the connection first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    ]
    while len(body) < (lengths[0] if lengths else 0):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
