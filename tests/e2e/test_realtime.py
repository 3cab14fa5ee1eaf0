"""The fleet in real time: WebSocket delivery, typing, presence, resume, revocation, GraphQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .conftest import next_frame

pytestmark = [pytest.mark.e2e]

Register = Callable[[], Any]
Eventually = Callable[..., None]


@contextmanager
def socket(fleet: Any, user: Any, device: str = "laptop") -> Iterator[ClientConnection]:
    """A WebSocket of ``user``, past its ``ready`` frame."""
    with connect(f"{fleet.ws}?token={user.access_token}", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": user.access_token, "device_id": device}))
        frame = next_frame(ws, {"ready"})
        assert frame["user_id"] == user.id
        yield ws


def frames_of(
    ws: ClientConnection, kind: str, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    return [next_frame(ws, {kind}, timeout) for _ in range(count)]


def post(user: Any, conv: str, body: str) -> dict[str, Any]:
    r = user.post(
        f"/conversations/{conv}/messages", {"body": body, "client_msg_id": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def close_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


def group(owner: Any, *members: Any) -> str:
    r = owner.post(
        "/conversations", {"kind": "group", "title": "e2e", "member_ids": [m.id for m in members]}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_messages_posted_over_rest_arrive_over_websocket_in_order(
    fleet: Any, register: Register
) -> None:
    alice, bob, carol = register(), register(), register()
    conv = group(alice, bob, carol)
    with socket(fleet, bob) as bob_ws, socket(fleet, carol) as carol_ws:
        sent = [post(alice, conv, f"m{i}") for i in range(5)]
        for ws in (bob_ws, carol_ws):
            got = frames_of(ws, "message.posted", 5)
            assert [f["message"]["seq"] for f in got] == [m["seq"] for m in sent]
            assert [f["message"]["body"] for f in got] == [f"m{i}" for i in range(5)]
            assert all(f["conversation_id"] == conv for f in got)


def test_frames_are_not_compressed_by_default(fleet: Any, register: Register) -> None:
    # The client offers permessage-deflate (as browsers do); the gateway declines it.
    user = register()
    with connect(f"{fleet.ws}?token={user.access_token}", open_timeout=10) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert next_frame(ws, {"ready"})["user_id"] == user.id


def test_a_new_conversation_reaches_members_already_connected(
    fleet: Any, register: Register
) -> None:
    alice, bob = register(), register()
    with socket(fleet, bob) as bob_ws:
        conv = group(alice, bob)
        created = next_frame(bob_ws, {"conversation.created", "member.added"})
        assert created["conversation_id"] == conv
        post(alice, conv, "hello")
        assert next_frame(bob_ws, {"message.posted"})["message"]["body"] == "hello"


def test_typing_and_presence_arrive(fleet: Any, register: Register, eventually: Eventually) -> None:
    alice, bob = register(), register()
    conv = group(alice, bob)
    assert alice.post("/users/me/contacts", {"user_id": bob.id}).status_code in (200, 201, 204)
    with socket(fleet, alice) as alice_ws:
        with socket(fleet, bob, device="phone") as bob_ws:
            presence = next_frame(alice_ws, {"presence"})
            assert (presence["user_id"], presence["status"]) == (bob.id, "online")
            bob_ws.send(json.dumps({"type": "typing", "conversation_id": conv}))
            typing = next_frame(alice_ws, {"typing"})
            assert (typing["user_id"], typing["typing"]) == (bob.id, True)
        eventually(
            lambda: (
                alice.get("/presence", params={"ids": bob.id}).json()["items"][0]["status"]
                == "offline"
            ),
            timeout=20,
        )


def test_a_member_viewing_the_conversation_is_not_notified_of_its_messages(
    fleet: Any, register: Register
) -> None:
    alice, bob, carol = register(), register(), register()
    conv = group(alice, bob, carol)
    other = group(alice, carol)  # bob is not a member
    assert alice.post("/users/me/contacts", {"user_id": bob.id}).status_code in (200, 201, 204)
    with (
        socket(fleet, alice) as alice_ws,
        socket(fleet, carol, "phone") as carol_ws,
        socket(fleet, bob) as bob_ws,
    ):
        # Bob's presence reached his contacts, so it reached notification's state before.
        assert next_frame(alice_ws, {"presence"})["status"] == "online"
        bob_ws.send(json.dumps({"type": "view", "conversation_id": other}))
        refused = next_frame(bob_ws, {"error"})
        if refused["message"] == "already authenticated":  # socket()'s own auth frame
            refused = next_frame(bob_ws, {"error"})
        assert (refused["code"], refused.get("conversation_id")) == ("not_found", other), refused
        bob_ws.send(json.dumps({"type": "view", "conversation_id": conv}))
        assert next_frame(bob_ws, {"view.ok"}) == {"type": "view.ok", "conversation_id": conv}
        post(alice, conv, "seen on screen")
        assert next_frame(bob_ws, {"message.posted"})["message"]["body"] == "seen on screen"
        # Carol, connected but elsewhere, is notified; the same event decided for bob.
        note = next_frame(carol_ws, {"notification"})
        assert note["notification"]["conversation_id"] == conv
        assert bob.get("/notifications/unread-count").json()["count"] == 0
        bob_ws.send(json.dumps({"type": "view", "conversation_id": None}))
        assert next_frame(bob_ws, {"view.ok"})["conversation_id"] is None
        post(alice, conv, "off screen")
        assert next_frame(bob_ws, {"notification"})["notification"]["conversation_id"] == conv
    assert bob.get("/notifications/unread-count").json()["count"] == 1


def test_a_client_that_drops_gets_exactly_the_missed_messages_on_resume(
    fleet: Any, register: Register
) -> None:
    alice, bob = register(), register()
    conv = group(alice, bob)
    first = post(alice, conv, "before")
    with socket(fleet, bob):
        pass  # connected once; then the connection drops
    missed = [post(alice, conv, f"while away {i}") for i in range(20)]
    with socket(fleet, bob) as bob_ws:
        bob_ws.send(json.dumps({"type": "resume", "conversations": {conv: first["seq"]}}))
        got = frames_of(bob_ws, "message.posted", 20)
        resumed = next_frame(bob_ws, {"resumed"})
    assert [f["message"]["seq"] for f in got] == [m["seq"] for m in missed]
    assert resumed["recovered"] is True
    assert resumed["count"] == 20


def test_a_revoked_session_is_refused_and_its_socket_closed(
    fleet: Any, register: Register, eventually: Eventually
) -> None:
    bob = register()
    with socket(fleet, bob) as bob_ws:
        assert bob.post("/auth/logout").status_code == 204
        assert close_code(bob_ws) == 4003
    assert bob.get("/users/me").status_code == 401


def test_malformed_frames_get_error_frames_and_the_connection_stays_up(
    fleet: Any, register: Register
) -> None:
    bob = register()
    with socket(fleet, bob) as ws:
        for bad in (
            "not json",
            json.dumps([1, 2]),
            json.dumps({"type": "dance"}),
            json.dumps({"type": "read", "conversation_id": "c", "seq": "x"}),
        ):
            ws.send(bad)
            error = next_frame(ws, {"error"})
            assert error["code"] and error["message"]
        ws.send(json.dumps({"type": "ping", "id": "p1"}))
        assert next_frame(ws, {"pong"})["id"] == "p1"


def test_a_bad_token_closes_the_socket_with_4001(fleet: Any) -> None:
    with connect(f"{fleet.ws}?token=forged.token.here", open_timeout=10) as ws:
        assert close_code(ws) == 4001


def test_graphql_serves_a_repeated_query_from_cache_until_a_change(
    fleet: Any, register: Register, eventually: Eventually
) -> None:
    alice = register()
    headers = {"Authorization": f"Bearer {alice.access_token}"}
    query = {"query": "{ me { id displayName } }"}

    def ask() -> httpx.Response:
        return httpx.post(f"{fleet.api}/graphql", json=query, headers=headers, timeout=10)

    eventually(lambda: ask().json().get("data", {}).get("me") is not None)
    first, second = ask(), ask()
    assert second.headers["X-Cache"] == "hit"
    assert second.json() == first.json()
    assert alice.http.patch("/users/me", json={"display_name": "Renamed"}).status_code == 200
    eventually(lambda: ask().json()["data"]["me"]["displayName"] == "Renamed")
