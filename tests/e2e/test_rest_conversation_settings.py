"""Per-conversation settings over REST: muting one conversation, and every member's read marker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e]

User = Any  # tests/e2e/conftest.py: a registered user with an authenticated client
Register = Callable[[], Any]
Eventually = Callable[..., None]


def _post(user: User, conv: str, body: str, **extra: object) -> httpx.Response:
    payload = {"body": body, "client_msg_id": uuid.uuid4().hex, **extra}
    r = user.post(f"/conversations/{conv}/messages", payload)
    assert r.status_code == 201, r.text
    return r


def _mentions(user: User) -> list[str]:
    return [n["preview"] for n in user.get("/notifications").json()["items"]]


def test_a_muted_conversation_notifies_nobody_but_its_messages_still_arrive(
    register: Register, eventually: Eventually
) -> None:
    alice, bob, carol = register(), register(), register()
    conv = bob.post(
        "/conversations", {"kind": "group", "title": "quiet", "member_ids": [alice.id, carol.id]}
    ).json()["id"]
    path = f"/conversations/{conv}/notifications"
    assert alice.get(path).json() == {
        "conversation_id": conv,
        "muted": False,
        "muted_until": None,
        "level": None,
    }
    muted = alice.http.put(path, json={"muted": True})
    assert muted.status_code == 200, muted.text
    assert muted.json()["muted"] is True
    assert muted.json()["muted_until"].startswith("9999-12-31")  # until unmuted
    assert alice.get(path).json()["muted"] is True

    _post(bob, conv, "while muted", mentions=[alice.id, carol.id])
    # Carol is told of the very event Alice is not: once she is, the event has been handled.
    eventually(lambda: "while muted" in _mentions(carol))
    assert alice.get("/notifications/unread-count").json()["count"] == 0
    assert _mentions(alice) == []
    history = alice.get(f"/conversations/{conv}/messages").json()["items"]
    assert [m["body"] for m in history] == ["while muted"]  # the message itself arrives

    unmuted = alice.http.put(path, json={"muted": False})
    assert unmuted.json()["muted"] is False and unmuted.json()["muted_until"] is None
    _post(bob, conv, "after the mute", mentions=[alice.id])
    eventually(lambda: alice.get("/notifications/unread-count").json()["count"] == 1)
    assert _mentions(alice) == ["after the mute"]


def test_a_mute_can_end_at_a_time_and_bad_settings_get_clear_errors(register: Register) -> None:
    alice, bob = register(), register()
    conv = bob.post("/conversations", {"kind": "direct", "member_ids": [alice.id]}).json()["id"]
    path = f"/conversations/{conv}/notifications"
    until = "2999-01-01T08:00:00+02:00"
    r = alice.http.put(path, json={"muted": True, "muted_until": until, "level": "mentions"})
    assert r.status_code == 200, r.text
    assert r.json()["muted_until"].startswith("2999-01-01T06:00:00")
    assert (r.json()["muted"], r.json()["level"]) == (True, "mentions")

    for body, field in (
        ({"muted": True, "muted_until": "2001-01-01T00:00:00Z"}, "muted_until"),
        ({"muted_until": "2999-01-01T00:00:00Z"}, "muted_until"),
        ({"muted": True, "muted_until": "2999-01-01T00:00:00"}, "muted_until"),  # no zone
        ({"level": "loud"}, "level"),
    ):
        refused = alice.http.put(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["code"] == "invalid"
        assert field in refused.json()["error"].get("field", ""), refused.text
    assert alice.get(path).json()["level"] == "mentions"  # a refused change changed nothing


def test_an_outsider_can_neither_see_nor_set_a_conversations_settings_or_markers(
    register: Register,
) -> None:
    alice, bob, mallory = register(), register(), register()
    conv = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]}).json()["id"]
    absent = f"c{uuid.uuid4().hex}"
    for target in (conv, absent):
        assert mallory.get(f"/conversations/{target}/notifications").status_code == 404
        put = mallory.http.put(f"/conversations/{target}/notifications", json={"muted": True})
        assert put.status_code == 404
        assert mallory.get(f"/conversations/{target}/read-markers").status_code == 404
        assert mallory.get(f"/conversations/{target}/notifications").json()["error"]["code"] == (
            "not_found"
        )
    assert bob.get(f"/conversations/{conv}/notifications").status_code == 200  # a member may


def test_read_markers_list_every_members_last_read_message(register: Register) -> None:
    alice, bob, carol = register(), register(), register()
    conv = alice.post(
        "/conversations", {"kind": "group", "title": "seen", "member_ids": [bob.id, carol.id]}
    ).json()["id"]
    for n in range(3):
        _post(alice, conv, f"m{n}")
    assert bob.post(f"/conversations/{conv}/read", {"seq": 2}).status_code == 200

    r = carol.get(f"/conversations/{conv}/read-markers")
    assert r.status_code == 200, r.text
    assert r.json()["conversation_id"] == conv
    markers = {m["user_id"]: m["seq"] for m in r.json()["items"]}
    assert markers == {alice.id: 0, bob.id: 2, carol.id: 0}
