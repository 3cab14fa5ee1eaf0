"""Back up a fleet's cluster and databases, lose them, and bring them back with ``parley cluster``.

Two rehearsals on the operations fleet: the whole cluster and every database wiped and restored
from a backup; then a master and its replica SIGKILLed with their data deleted, and the disaster
procedure of docs/operations.md performed line by line as written there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from contracts import registry
from parley.fleet import DATA_SERVICES

from .conftest import PARLEY, ROOT, Ops, Person, register

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.5)


def admin(ops: Ops) -> redis.RedisCluster:
    user, password = ops.cluster.credentials("admin")
    return redis.RedisCluster(
        host="127.0.0.1", port=ops.cluster.ports[0], username=user, password=password
    )


def consumer_groups(ops: Ops) -> dict[str, list[tuple[str, str, int]]]:
    """Per chat.events partition: (group, last-delivered id, pending) of each group."""
    with admin(ops) as r:
        return {
            key: sorted(
                (g["name"].decode(), g["last-delivered-id"].decode(), int(g["pending"]))
                for g in r.xinfo_groups(key)
            )
            for key in registry.stream("chat.events").partition_keys()
            if r.exists(key)
        }


def databases(ops: Ops) -> list[str]:
    args = []
    for service in DATA_SERVICES:
        args += ["--database", f"{service}=sqlite:///{ops.home / 'fleet' / f'{service}.db'}"]
    return args


def chat_state(bob: Person, conv: str) -> dict[str, Any]:
    convs = bob.http.get("/conversations")
    history = bob.http.get(f"/conversations/{conv}/messages", params={"after": 0})
    notes = bob.http.get("/notifications")
    for r in (convs, history, notes):
        assert r.status_code == 200, r.text
    mine = next(c for c in convs.json()["items"] if c["id"] == conv)
    return {
        "unread": mine["unread_count"],
        "messages": [(m["seq"], m["body"]) for m in history.json()["items"]],
        "notifications": sorted(notes.json()["items"], key=lambda n: str(n["id"])),
    }


def chat_with_history(ops: Ops) -> tuple[Person, Person, str]:
    fleet = ops.fleet
    assert fleet is not None
    alice, bob = register(fleet), register(fleet)
    r = alice.http.post(
        "/conversations", json={"kind": "group", "title": "bk", "member_ids": [bob.id]}
    )
    assert r.status_code == 201, r.text
    conv = r.json()["id"]
    for i in range(4):
        body = {"body": f"before {i}", "client_msg_id": uuid.uuid4().hex}
        assert alice.http.post(f"/conversations/{conv}/messages", json=body).status_code == 201
    assert bob.http.post(f"/conversations/{conv}/read", json={"seq": 2}).status_code == 200
    # Notifications of one conversation coalesce: wait until bob's stop changing.
    eventually(lambda: bob.http.get("/notifications/unread-count").json()["count"] >= 1)
    last: list[Any] = []

    def settled() -> bool:
        now = bob.http.get("/notifications").json()["items"]
        same = now == last
        last[:] = now
        return bool(same)

    eventually(settled)
    return alice, bob, conv


def post_and_notify(alice: Person, bob: Person, conv: str, state: dict[str, Any]) -> None:
    """A new message continues the sequence and changes bob's notifications (the consumer groups
    read on)."""
    body = {"body": "after", "client_msg_id": uuid.uuid4().hex}
    posted = alice.http.post(f"/conversations/{conv}/messages", json=body)
    assert posted.status_code == 201, posted.text
    assert posted.json()["seq"] == len(state["messages"]) + 1
    eventually(lambda: chat_state(bob, conv)["notifications"] != state["notifications"])


def test_a_wiped_cluster_and_databases_come_back_from_a_backup(ops: Ops, tmp_path: Path) -> None:
    alice, bob, conv = chat_with_history(ops)
    before = chat_state(bob, conv)
    groups = consumer_groups(ops)
    assert groups and any(g for g in groups.values())
    folder = Path(ops.parley("backup", str(tmp_path), *databases(ops))["folder"])
    assert (folder / "manifest.json").is_file()

    ops.stop_fleet()
    ops.cluster.reset()
    ops.cluster.up()
    for service in DATA_SERVICES:
        for suffix in ("", "-wal", "-shm"):
            (ops.home / "fleet" / f"{service}.db{suffix}").unlink(missing_ok=True)
    restored = ops.parley("restore", str(folder), *databases(ops), "--yes")
    assert sum(r["keys"] for r in restored["restored"]) > 0
    assert consumer_groups(ops) == groups  # before any service runs: restored, not re-created
    fleet = ops.start_fleet()  # on new ports: the clients follow
    for person in (alice, bob):
        person.http.base_url = httpx.URL(f"{fleet.api}/api/v1")

    assert chat_state(bob, conv) == before  # bob's old token: the session is valid
    time.sleep(3)  # a re-run of a handled event would add notifications meanwhile
    assert chat_state(bob, conv) == before
    assert ops.fleet is not None
    credentials = {"username": bob.username, "password": bob.password}
    login = httpx.post(f"{ops.fleet.api}/api/v1/auth/login", json=credentials, timeout=15)
    assert login.status_code == 200, login.text
    post_and_notify(alice, bob, conv, before)


def runbook_lines() -> list[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- dr-runbook.*?-->\s*```sh\n(.*?)```\s*<!-- /dr-runbook -->", text, re.S)
    assert block, "docs/operations.md has no dr-runbook block"
    return [line.split("  #", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def test_a_lost_shard_comes_back_by_the_documented_procedure(ops: Ops, tmp_path: Path) -> None:
    alice, bob, conv = chat_with_history(ops)
    before = chat_state(bob, conv)
    folder = ops.parley("backup", str(tmp_path))["folder"]

    status = ops.parley("status")
    seed = ops.cluster.url().rsplit("/", 1)[1]
    master = next(n for n in status["nodes"] if n["role"] == "master" and n["address"] != seed)
    replica = next(n for n in status["nodes"] if n["master_id"] == master["id"])
    lost = [int(n["address"].rsplit(":", 1)[1]) for n in (master, replica)]
    for port in lost:
        ops.cluster.stop_node(port, sig=signal.SIGKILL)
        shutil.rmtree(ops.cluster.node_dir(port))
    for port in lost:  # the replacements: empty nodes in the same places
        ops.cluster.start_node(port)

    def both_failed() -> bool:
        out = subprocess.run(
            [PARLEY, "cluster", "status", "--json"],
            env=ops.env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        nodes = json.loads(out.stdout)["nodes"]
        failed = [n for n in nodes if n["error"] == "marked failed by the cluster"]
        return len(failed) == 2

    eventually(both_failed, 60)
    env = {
        **ops.env(),
        "PATH": f"{Path(PARLEY).parent}:{os.environ['PATH']}",
        "NEW_MASTER": f"127.0.0.1:{lost[0]}",
        "NEW_REPLICA": f"127.0.0.1:{lost[1]}",
        "BACKUP": folder,
    }
    for line in runbook_lines():
        done = subprocess.run(
            ["bash", "-ec", line], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{line}: {done.stdout} {done.stderr}"

    status = ops.parley("status")
    assert status["ok"], status["problems"]
    new = next(n for n in status["nodes"] if n["address"] == f"127.0.0.1:{lost[0]}")
    assert new["role"] == "master" and new["slots"] == master["slots"] and new["keys"] > 0
    fleet = ops.fleet
    assert fleet is not None
    fleet.wait_ready(timeout=120)
    eventually(lambda: bob.http.get("/conversations").status_code == 200, 60)
    assert chat_state(bob, conv) == before  # sessions and caches of the lost slots are back
    post_and_notify(alice, bob, conv, before)
