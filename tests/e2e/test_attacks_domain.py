"""Attacks on the fleet's domain rules through the public API: blocks, control characters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from .conftest import next_frame

pytestmark = [pytest.mark.e2e]

Register = Callable[[], Any]
Eventually = Callable[..., None]


def _post(user: Any, conv: str, body: str) -> httpx.Response:
    payload = {"body": body, "client_msg_id": uuid.uuid4().hex}
    return user.post(f"/conversations/{conv}/messages", payload)  # type: ignore[no-any-return]


def _presence(viewer: Any, of: Any) -> str:
    items = viewer.get("/presence", params={"ids": of.id}).json()["items"]
    return str(items[0]["status"])


@contextmanager
def _socket(fleet: Any, user: Any, device: str) -> Iterator[ClientConnection]:
    with connect(f"{fleet.ws}?token={user.access_token}", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": user.access_token, "device_id": device}))
        next_frame(ws, {"ready"})
        yield ws


def test_a_blocked_user_neither_posts_to_nor_adds_nor_sees_the_blocker_until_unblocked(
    fleet: Any, register: Register, eventually: Eventually
) -> None:
    alice, bob, carol = register(), register(), register()
    direct = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]}).json()["id"]
    shared = carol.post(
        "/conversations", {"kind": "group", "title": "g", "member_ids": [alice.id, bob.id]}
    ).json()["id"]
    for contact in (alice, carol):  # bob watches both
        assert bob.post("/users/me/contacts", {"user_id": contact.id}).status_code == 204
    with _socket(fleet, alice, "a1"):
        eventually(lambda: _presence(bob, alice) == "online")  # also warms bob's cached answer
        assert alice.post("/users/me/blocks", {"user_id": bob.id}).status_code == 204
        eventually(lambda: _post(bob, direct, "still there?").status_code == 403)
        assert _presence(bob, alice) == "offline"
        assert _presence(carol, alice) == "online"
    assert _post(alice, direct, "and me?").status_code == 403
    # In a group they share, messages still flow.
    assert _post(bob, shared, "in the group").status_code == 201
    # Bob cannot pull Alice into a group.
    assert (
        bob.post(
            "/conversations", {"kind": "group", "title": "t", "member_ids": [alice.id]}
        ).status_code
        == 403
    )
    own = bob.post("/conversations", {"kind": "group", "title": "t", "member_ids": [carol.id]})
    assert own.status_code == 201
    added = bob.post(f"/conversations/{own.json()['id']}/members", {"member_ids": [alice.id]})
    assert added.status_code == 403
    # Alice's presence frames do not reach bob; carol's, which come after, do.
    with (
        _socket(fleet, bob, "b1") as bob_ws,
        _socket(fleet, alice, "a2"),
        _socket(fleet, carol, "c1"),
    ):
        seen = []
        while not seen or seen[-1] != carol.id:
            seen.append(next_frame(bob_ws, {"presence"})["user_id"])
        assert alice.id not in seen

    assert bob.http.delete(f"/users/me/blocks/{alice.id}").status_code == 204  # no-op
    assert alice.http.delete(f"/users/me/blocks/{bob.id}").status_code == 204
    eventually(lambda: _post(bob, direct, "hello again").status_code == 201)
    items = alice.get(f"/conversations/{direct}/messages").json()["items"]
    assert [m["body"] for m in items] == ["hello again"]


def test_control_characters_in_a_body_or_a_title_are_refused_and_lose_nothing(
    register: Register,
) -> None:
    alice, bob = register(), register()
    conv = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]}).json()["id"]
    for body in ("nul\u0000inside", "bell\u0007", "\u001b[31mred", "c1\u0085"):
        refused = _post(alice, conv, body)
        assert refused.status_code == 422, (body, refused.text)
        assert "control characters" in refused.text
    titled = alice.post(
        "/conversations", {"kind": "group", "title": "t\u0000", "member_ids": [bob.id]}
    )
    assert titled.status_code == 422 and "control characters" in titled.text
    kept = _post(alice, conv, "lines\nand\ttabs stay")
    assert kept.status_code == 201, kept.text
    edited = alice.http.patch(
        f"/conversations/{conv}/messages/{kept.json()['seq']}", json={"body": "x\u0000"}
    )
    assert edited.status_code == 422
    items = bob.get(f"/conversations/{conv}/messages").json()["items"]
    assert [m["body"] for m in items] == ["lines\nand\ttabs stay"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9090/-/quit",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://10.0.0.1/",
        "https://localhost/hook",
    ],
)
def test_a_webhook_into_the_servers_own_network_is_refused_when_set(
    register: Register, url: str
) -> None:
    alice = register()
    r = alice.http.put("/notifications/preferences", json={"webhook_url": url})
    assert r.status_code == 422, r.text
    assert "refused webhook URL" in r.text
    kept = alice.get("/notifications/preferences").json()
    assert kept["webhook_url"] is None and "webhook_secret" not in kept
