"""A fourth master joins a fleet under chat traffic, takes a quarter of the slots, and leaves.

The moved slots include half of the ``chat.events`` partitions and the slots of half of the
conversations (their ``rt:{conv:<id>}`` channels and ``{conv:<id>}`` cache keys), plus every
fourth slot. Meanwhile senders post over REST (retrying the same ``client_msg_id`` on 503/504, and
after Retry-After on 429, as a client does) and every receiver holds a WebSocket. Pass: every
acknowledged message is stored exactly once, no 500, every socket receives live messages after
the moves, and what a socket missed comes back through ``resume``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis.crc import key_slot
from websockets.sync.client import ClientConnection, connect

from contracts import registry
from tests.e2e.conftest import next_frame

from .conftest import Ops, Person, register

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONVERSATIONS = 6


@dataclass
class Traffic:
    acked: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_until_acked(sender: Person, conv: str, body: str, traffic: Traffic) -> int:
    """POST once per attempt with one client_msg_id until 201/200; the message's seq."""
    cmid = uuid.uuid4().hex
    for _ in range(60):
        try:
            r = sender.http.post(
                f"/conversations/{conv}/messages", json={"body": body, "client_msg_id": cmid}
            )
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code in (200, 201):
            return int(r.json()["seq"])
        if r is not None and r.status_code == 429:
            # The sender outran its rate limit (a quiet machine posts faster than 20/s): a client
            # waits as Retry-After says and sends the same message again. Not a failure.
            time.sleep(min(float(r.headers.get("retry-after", "1")), 2.0))
            continue
        if r is not None and r.status_code not in (503, 504):
            traffic.failures.append(f"{r.status_code} {r.text[:200]}")
            return -1
        with traffic.lock:
            traffic.retries += 1
        time.sleep(0.2)
    traffic.failures.append(f"{body} never accepted")
    return -1


def send_loop(sender: Person, convs: list[str], traffic: Traffic) -> None:
    n = 0
    while not traffic.stop.is_set():
        conv = convs[n % len(convs)]
        seq = post_until_acked(sender, conv, f"m{n}", traffic)
        if seq > 0:
            with traffic.lock:
                traffic.acked[conv].append(seq)
        n += 1


@dataclass
class Socket:
    ws: ClientConnection
    conv: str
    seen: dict[int, str] = field(default_factory=dict)  # seq -> body
    resumed: list[dict[str, Any]] = field(default_factory=list)
    closed: BaseException | None = None

    def read_loop(self) -> None:
        try:
            for raw in self.ws:
                frame = json.loads(raw)
                if frame["type"] == "message.posted" and frame["conversation_id"] == self.conv:
                    seq, body = frame["message"]["seq"], frame["message"]["body"]
                    assert self.seen.setdefault(seq, body) == body, f"seq {seq} with two bodies"
                elif frame["type"] == "resumed":
                    self.resumed.append(frame)
        except Exception as e:
            self.closed = e


def wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def history_seqs(member: Person, conv: str) -> list[int]:
    """Every stored message's seq, page by page (100 a page)."""
    seqs: list[int] = []
    while True:
        page = member.http.get(
            f"/conversations/{conv}/messages",
            params={"after": seqs[-1] if seqs else 0, "limit": 100},
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        if not items:
            return seqs
        seqs += [m["seq"] for m in items]


def moving_slots(convs: list[str]) -> list[int]:
    chat_events = registry.stream("chat.events")
    chosen = {key_slot(k.encode()) for k in chat_events.partition_keys()[::2]}
    chosen |= {key_slot(f"rt:{{conv:{c}}}".encode()) for c in convs[::2]}
    return sorted(chosen | set(range(0, 16384, 4)))


def test_a_master_joins_takes_a_quarter_of_the_slots_and_leaves_under_traffic(ops: Ops) -> None:
    fleet = ops.fleet
    assert fleet is not None
    senders = [register(fleet) for _ in range(3)]
    receivers = [register(fleet) for _ in range(CONVERSATIONS)]
    convs = []
    for i, receiver in enumerate(receivers):
        r = senders[i % 3].http.post(
            "/conversations", json={"kind": "group", "title": f"r{i}", "member_ids": [receiver.id]}
        )
        assert r.status_code == 201, r.text
        convs.append(r.json()["id"])
    with contextlib.ExitStack() as stack:
        sockets = []
        for receiver, conv in zip(receivers, convs, strict=True):
            ws = stack.enter_context(connect(f"{fleet.ws}?token={receiver.token}", open_timeout=10))
            assert next_frame(ws, {"ready"})["user_id"] == receiver.id
            sockets.append(Socket(ws, conv))
        run_traffic_through_the_moves(ops, senders, convs, sockets)


def run_traffic_through_the_moves(
    ops: Ops, senders: list[Person], convs: list[str], sockets: list[Socket]
) -> None:
    readers = [threading.Thread(target=s.read_loop, daemon=True) for s in sockets]
    for t in readers:
        t.start()

    traffic = Traffic()
    plan = [convs[i::3] for i in range(3)]
    threads = [
        threading.Thread(target=send_loop, args=(s, c, traffic), daemon=True)
        for s, c in zip(senders, plan, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        wait(lambda: sum(len(v) for v in traffic.acked.values()) >= 20, 30)
        extra = ops.spare_nodes()
        a, b = extra.ports[0], extra.ports[1]
        master = ops.parley("add-node", f"127.0.0.1:{a}")
        ops.parley("add-node", f"127.0.0.1:{b}", "--replica-of", master["id"])
        slots = moving_slots(convs)
        moved = ops.parley(
            "reshard", "--to", master["id"], "--slots", ",".join(map(str, slots)), "--yes"
        )
        assert moved["slots"] == len(slots) and 4096 <= len(slots) < 4400
        status = ops.parley("status")
        new = next(n for n in status["nodes"] if n["id"] == master["id"])
        assert new["slots"] == len(slots) and new["keys"] > 0
        mid = sum(len(v) for v in traffic.acked.values())
        removed = ops.parley("remove-node", master["id"], "--yes")
        assert len(removed["removed"]) == 2  # the master and its replica
        wait(lambda: sum(len(v) for v in traffic.acked.values()) >= mid + 20, 30)
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(timeout=60)
    # Replicas that moved with the drained master settle back within a few node timeouts.
    assert wait(lambda: ops.status()["ok"], 30), ops.status()["problems"]
    status = ops.status()
    assert len(status["nodes"]) == 6 and status["slots_covered"] == 16384
    assert not traffic.failures, traffic.failures[:5]

    # Every socket still receives live: a last message to each conversation arrives by itself.
    last = {
        conv: post_until_acked(senders[i % 3], conv, "after", traffic)
        for i, conv in enumerate(convs)
    }
    for s in sockets:
        assert wait(lambda s=s: last[s.conv] in s.seen, 20), (
            f"{s.conv}: live delivery stopped ({s.closed})"
        )
    # What a socket missed during the moves comes back through resume.
    for s in sockets:
        acked = set(traffic.acked[s.conv]) | {last[s.conv]}
        if not acked <= set(s.seen):
            contiguous = 0
            while contiguous + 1 in s.seen:
                contiguous += 1
            s.ws.send(json.dumps({"type": "resume", "conversations": {s.conv: contiguous}}))
            assert wait(lambda s=s: s.resumed, 20)
        assert acked <= set(s.seen), f"{s.conv}: {sorted(acked - set(s.seen))[:10]} never arrived"
    # Stored exactly once: seqs 1..n without holes or repeats, one per acknowledged post.
    for i, conv in enumerate(convs):
        seqs = history_seqs(senders[i % 3], conv)
        assert seqs == list(range(1, len(seqs) + 1))
        assert sorted([*traffic.acked[conv], last[conv]]) == seqs
    print(f"retries {traffic.retries}, messages {sum(len(v) for v in traffic.acked.values())}")
