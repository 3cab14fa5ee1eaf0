"""The fleet at scale: several gateway processes, a gateway going away, a 1,000-member group."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from parley.fleet import Fleet

from .conftest import FAST_SETTINGS, next_frame

pytestmark = [pytest.mark.e2e]

Register = Callable[[], Any]
GOING_AWAY = 1001


@dataclass(frozen=True)
class Online:
    """A user as a socket needs it."""

    id: str
    access_token: str


@contextmanager
def extra_gateways(fleet: Fleet, count: int) -> Iterator[list[tuple[str, str]]]:
    """``count`` more gateway processes on the fleet's backends: (name, WebSocket URL) each."""
    names = [f"gateway-scale-{uuid.uuid4().hex[:6]}" for _ in range(count)]
    try:
        for name in names:
            fleet.add("gateway", name=name, env=FAST_SETTINGS["gateway"])
        fleet.wait_ready(names)
        yield [(n, f"ws://{fleet.host}:{fleet.processes[n].port}/ws") for n in names]
    finally:
        for name in names:
            process = fleet.processes.pop(name, None)
            if process is not None and process.popen.poll() is None:
                process.popen.terminate()
                process.popen.wait(30)


def open_socket(url: str, user: Any, device: str = "laptop") -> ClientConnection:
    """A WebSocket of ``user`` on the gateway at ``url``, past its ``ready`` frame."""
    ws = connect(f"{url}?token={user.access_token}&device_id={device}", open_timeout=20)
    assert next_frame(ws, {"ready"}, timeout=20)["user_id"] == user.id
    return ws


def post(user: Any, conv: str, body: str) -> dict[str, Any]:
    r = user.post(
        f"/conversations/{conv}/messages", {"body": body, "client_msg_id": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def group(owner: Any, member_ids: list[str]) -> httpx.Response:
    return owner.post(  # type: ignore[no-any-return]
        "/conversations", {"kind": "group", "title": "scale", "member_ids": member_ids}
    )


def posted_seqs(ws: ClientConnection, count: int, *, quiet: float = 1.5) -> list[int]:
    """The seqs of the next ``count`` ``message.posted`` frames, then of any that follow within
    ``quiet`` seconds (a duplicate would show there)."""
    seqs = [next_frame(ws, {"message.posted"}, timeout=20)["message"]["seq"] for _ in range(count)]
    try:
        while True:
            frame = json.loads(ws.recv(timeout=quiet))
            if frame["type"] == "message.posted":
                seqs.append(frame["message"]["seq"])
    except TimeoutError:
        pass
    return seqs


def close_code(ws: ClientConnection, timeout: float = 20.0) -> int | None:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


def test_clients_split_over_two_gateways_each_get_every_frame_once_and_survive_one_going_away(
    fleet: Fleet, register: Register
) -> None:
    alice, bob, carol, dave = (register() for _ in range(4))
    r = group(alice, [bob.id, carol.id, dave.id])
    assert r.status_code == 201, r.text
    conv = str(r.json()["id"])
    with extra_gateways(fleet, 2) as [(going, first), (_, second)], ExitStack() as sockets:
        on_first = [sockets.enter_context(open_socket(first, u)) for u in (alice, carol)]
        on_second = [sockets.enter_context(open_socket(second, u)) for u in (bob, dave)]
        carol_phone = sockets.enter_context(open_socket(first, carol, "phone"))

        sent = [post(alice, conv, f"live {i}")["seq"] for i in range(5)]
        for ws in [*on_first, *on_second, carol_phone]:
            assert posted_seqs(ws, 5) == sent  # each socket: every frame, once, in order

        fleet.processes[going].popen.send_signal(signal.SIGTERM)
        for ws in [*on_first, carol_phone]:
            assert close_code(ws) == GOING_AWAY

        missed = [post(bob, conv, f"while away {i}")["seq"] for i in range(3)]
        carol_again = sockets.enter_context(open_socket(second, carol))
        carol_again.send(json.dumps({"type": "resume", "conversations": {conv: sent[-1]}}))
        recovered = [
            next_frame(carol_again, {"message.posted"}, timeout=20)["message"]["seq"]
            for _ in missed
        ]
        resumed = next_frame(carol_again, {"resumed"}, timeout=20)
        assert recovered == missed
        assert resumed["recovered"] is True and resumed["count"] == len(missed)

        after = post(dave, conv, "after the move")["seq"]
        for ws in on_second:
            assert posted_seqs(ws, 4) == [*missed, after]
        assert posted_seqs(carol_again, 1) == [after]


def register_many(fleet: Fleet, count: int) -> list[dict[str, str]]:
    """``count`` users registered in parallel: their ids and access tokens."""

    def one(_: int) -> dict[str, str]:
        name = f"s{uuid.uuid4().hex[:12]}"
        body = {"username": name, "password": f"pw-{uuid.uuid4().hex}", "display_name": name}
        r = httpx.post(f"{fleet.api}/api/v1/auth/register", json=body, timeout=60)
        assert r.status_code == 201, r.text
        return {"id": r.json()["user_id"], "token": r.json()["access_token"]}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def test_a_post_to_a_thousand_member_group_reaches_every_online_member_once(
    fleet: Fleet, register: Register
) -> None:
    owner = register()
    others = register_many(fleet, 999)
    too_many = group(owner, [*(u["id"] for u in others), str(uuid.uuid4())])
    assert too_many.status_code == 422
    assert "at most 1000 members" in too_many.json()["error"]["message"]
    r = group(owner, [u["id"] for u in others])
    assert r.status_code == 201, r.text
    conv = str(r.json()["id"])
    assert len(r.json()["member_ids"]) == 1000

    online = [Online(u["id"], u["token"]) for u in others[:100]]
    with extra_gateways(fleet, 1) as [(_, second)], ExitStack() as sockets:
        urls = [fleet.ws, second]
        wss = [sockets.enter_context(open_socket(urls[i % 2], u)) for i, u in enumerate(online)]
        seq = post(owner, conv, "hello, everyone")["seq"]
        for ws in wss:
            assert posted_seqs(ws, 1, quiet=0.05) == [seq]
