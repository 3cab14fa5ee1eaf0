"""Attacks on the gateway's WebSocket, end to end: eavesdropping by ``resume``, and floods.

Most run against the session's fleet with the gateway's production limits (per user and per
connection limits bite without help). The per-address handshake limit and the cap on ``resume``
entries in flight run against a second gateway process on the same backends, started by this
module with small limits and trusting ``X-Forwarded-For``, so each test is its own address.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from parley.fleet import Fleet

from .conftest import next_frame

pytestmark = [pytest.mark.e2e]

Register = Callable[[], Any]

STRICT = "gateway-strict"
STRICT_ENV = {
    "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
    "GATEWAY_WS_HANDSHAKE_RATE": "1",
    "GATEWAY_WS_HANDSHAKE_BURST": "3",
    "GATEWAY_WS_MAX_RESUMING": "5",
}


@pytest.fixture(scope="module")
def strict(fleet: Fleet) -> Iterator[str]:
    """The WebSocket URL of a second gateway with small handshake and resume limits."""
    process = fleet.add("gateway", name=STRICT, env=STRICT_ENV)
    try:
        fleet.wait_ready([STRICT], timeout=60)
        yield f"ws://{fleet.host}:{process.port}/ws"
    finally:
        fleet.processes.pop(STRICT, None)
        process.popen.terminate()
        process.popen.wait(20)


@contextmanager
def socket(url: str, user: Any, **headers: str) -> Iterator[ClientConnection]:
    """A WebSocket of ``user``, past its ``ready`` frame."""
    with connect(
        f"{url}?token={user.access_token}", open_timeout=10, additional_headers=headers
    ) as ws:
        assert next_frame(ws, {"ready"})["user_id"] == user.id
        yield ws


def group(owner: Any, *members: Any) -> str:
    body = {"kind": "group", "title": "attack", "member_ids": [m.id for m in members]}
    r = owner.post("/conversations", body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def post(user: Any, conv: str, body: str) -> dict[str, Any]:
    r = user.post(
        f"/conversations/{conv}/messages", {"body": body, "client_msg_id": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def drain(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives within ``seconds``."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return frames


def refusal(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """The frames sent before the server closed the socket, and its close code."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=10)))
    except ConnectionClosed as closed:
        return frames, None if closed.rcvd is None else closed.rcvd.code


@contextmanager
def activity(alice: Any, conv: str) -> Iterator[threading.Event]:
    """Alice posts and edits in ``conv`` in the background until the block ends."""
    stop = threading.Event()

    def run() -> None:
        first = post(alice, conv, "first")
        while not stop.is_set():
            post(alice, conv, "more")
            r = alice.http.patch(
                f"/conversations/{conv}/messages/{first['seq']}", json={"body": uuid.uuid4().hex}
            )
            assert r.status_code == 200, r.text
            stop.wait(0.1)  # within alice's API budget (20/s) for the whole test

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield stop
    finally:
        stop.set()
        worker.join(10)


# -- resume of a conversation the user is not in --------------------------------------------------


def test_resuming_a_conversation_of_others_never_delivers_its_frames_while_it_is_busy(
    fleet: Fleet, register: Register
) -> None:
    alice, bob, mallory = register(), register(), register()
    conv = group(alice, bob)
    with socket(fleet.ws, mallory) as ws, activity(alice, conv):
        frames: list[dict[str, Any]] = []
        for _ in range(40):  # each resume subscribes for a moment, if anything does
            ws.send(json.dumps({"type": "resume", "conversations": {conv: 0}}))
            frames += drain(ws, 0.05)
        frames += drain(ws, 1.0)
    leaked = [f for f in frames if f.get("conversation_id") == conv and f["type"] != "error"]
    assert leaked == []
    refused = [f for f in frames if f["type"] == "error" and f.get("conversation_id") == conv]
    assert refused and {f["code"] for f in refused} == {"not_found"}


def test_a_member_resuming_while_messages_flow_misses_none(
    fleet: Fleet, register: Register
) -> None:
    alice, bob = register(), register()
    conv = group(alice, bob)
    with activity(alice, conv) as stop:
        time.sleep(0.5)
        with socket(fleet.ws, bob) as ws:
            ws.send(json.dumps({"type": "resume", "conversations": {conv: 0}}))
            time.sleep(1.0)
            stop.set()
            frames = drain(ws, 3.0)
    head = max(int(m["seq"]) for m in alice.get(f"/conversations/{conv}/messages").json()["items"])
    # Live frames between ready and resume may come again in the catch-up: clients keep the
    # highest seq per conversation, so repeats are harmless; a hole is not.
    seqs = [f["message"]["seq"] for f in frames if f["type"] == "message.posted"]
    assert sorted(set(seqs)) == list(range(1, head + 1))
    assert [f["recovered"] for f in frames if f["type"] == "resumed"] == [True]


# -- limits ----------------------------------------------------------------------------------------


def test_a_user_past_the_connection_cap_is_refused_with_4009_until_a_socket_closes(
    fleet: Fleet, register: Register
) -> None:
    mallory = register()
    with ExitStack() as open_sockets:
        first = open_sockets.enter_context(socket(fleet.ws, mallory))
        for _ in range(19):  # the default cap: 20 per user, over every gateway
            open_sockets.enter_context(socket(fleet.ws, mallory))
        with connect(f"{fleet.ws}?token={mallory.access_token}", open_timeout=10) as extra:
            frames, code = refusal(extra)
        assert code == 4009
        assert [f["code"] for f in frames] == ["too_many_connections"]
        first.close()
        time.sleep(0.5)  # the slot is given back as the gateway sees the close
        with socket(fleet.ws, mallory):
            pass


def test_a_connection_flooding_frames_is_told_to_slow_down_then_closed_with_4029(
    fleet: Fleet, register: Register
) -> None:
    mallory = register()
    with socket(fleet.ws, mallory) as ws:
        for i in range(70):  # past the default burst of 60
            ws.send(json.dumps({"type": "ping", "id": str(i)}))
        frames = drain(ws, 2.0)
        pongs = [f for f in frames if f["type"] == "pong"]
        assert 60 <= len(pongs) < 70
        told = [f for f in frames if f["type"] == "error"]
        assert [f["code"] for f in told] == ["rate_limited"] and told[0]["retry_after"] > 0
        for i in range(400):  # and on, ignoring it
            try:
                ws.send(json.dumps({"type": "ping", "id": str(i)}))
            except ConnectionClosed:
                break
        _, code = refusal(ws)
    assert code == 4029


def test_typing_in_conversations_of_others_is_refused_per_id_and_the_socket_stays_up(
    fleet: Fleet, register: Register
) -> None:
    mallory = register()
    junk = [f"c{uuid.uuid4().hex}" for _ in range(20)]
    with socket(fleet.ws, mallory) as ws:
        for conv in junk:
            ws.send(json.dumps({"type": "typing", "conversation_id": conv}))
        errors = [next_frame(ws, {"error"}) for _ in junk]
        ws.send(json.dumps({"type": "ping", "id": "alive"}))
        assert next_frame(ws, {"pong"})["id"] == "alive"
    assert [(e["code"], e.get("conversation_id")) for e in errors] == [
        ("not_found", conv) for conv in junk
    ]


def test_a_frame_over_64_kib_closes_the_socket_with_1009(fleet: Fleet, register: Register) -> None:
    mallory = register()
    with socket(fleet.ws, mallory) as ws:
        ws.send(json.dumps({"type": "ping", "id": "x" * (64 * 1024)}))
        _, code = refusal(ws)
    assert code == 1009


def test_handshakes_past_the_per_address_budget_are_refused_with_4029(
    strict: str, register: Register
) -> None:
    mallory = register()
    address = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    for _ in range(3):  # the burst
        with socket(strict, mallory, **address):
            pass
    url = f"{strict}?token={mallory.access_token}"
    with connect(url, open_timeout=10, additional_headers=address) as ws:
        frames, code = refusal(ws)
    assert code == 4029
    assert frames[0]["code"] == "rate_limited" and frames[0]["retry_after"] > 0
    other = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.1.{uuid.uuid4().int % 250}"}
    with socket(strict, mallory, **other):
        pass  # another address has its own budget


def test_resume_entries_in_flight_are_capped_per_connection(
    strict: str, register: Register
) -> None:
    mallory = register()
    address = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.2.{uuid.uuid4().int % 250}"}
    with socket(strict, mallory, **address) as ws:
        first = {f"c{uuid.uuid4().hex}": 0 for _ in range(5)}
        second = {f"c{uuid.uuid4().hex}": 0 for _ in range(5)}
        ws.send(json.dumps({"type": "resume", "conversations": first}))
        ws.send(json.dumps({"type": "resume", "conversations": second}))
        frames = drain(ws, 3.0)
    errors = [f for f in frames if f["type"] == "error"]
    limited = [f for f in errors if f["code"] == "rate_limited"]
    assert len(limited) == 1
    answered = {f["conversation_id"] for f in errors if f["code"] == "not_found"}
    assert answered == set(first)
