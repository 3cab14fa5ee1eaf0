"""The compose fleet in containers, step by step, in file order (one deployment for the module).

Each test is one step of docs/operations.md's deployment story: up and healthy, a client's whole
path, auth restarted, services scaled, a Redis master killed, a rolling upgrade, monitoring, and
``down -v`` leaving nothing behind.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from .conftest import JOBS, PROJECT, REDIS_NODES, SERVICES, Deployment, eventually

# The first step pays for the images and the start (minutes on a cold machine).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclass
class Client:
    """A registered user talking to one published gateway port."""

    api: str
    user_id: str
    username: str
    password: str
    access: str
    refresh: str

    def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.access}"}
        return httpx.request(
            method, f"{self.api}/api/v1{path}", json=body, headers=headers, timeout=20
        )


def register(api: str) -> Client:
    name = f"d{uuid.uuid4().hex[:12]}"
    password = f"pw-{uuid.uuid4().hex}"
    body = {"username": name, "password": password, "display_name": name.upper()}
    r = httpx.post(f"{api}/api/v1/auth/register", json=body, timeout=30)
    assert r.status_code == 201, r.text
    tokens = r.json()
    return Client(
        api, tokens["user_id"], name, password, tokens["access_token"], tokens["refresh_token"]
    )


def group(owner: Client, *members: Client) -> str:
    r = owner.request(
        "POST",
        "/conversations",
        {"kind": "group", "title": "deploy", "member_ids": [m.user_id for m in members]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def post(user: Client, conv: str, body: str, attempts: int = 1) -> dict[str, Any] | None:
    """Up to ``attempts`` tries (one client_msg_id: retried safely); the message or None."""
    client_msg_id = uuid.uuid4().hex
    for attempt in range(attempts):
        try:
            r = user.request(
                "POST",
                f"/conversations/{conv}/messages",
                {"body": body, "client_msg_id": client_msg_id},
            )
            if r.status_code in (200, 201):
                return dict(r.json())
        except httpx.HTTPError:
            pass
        if attempt + 1 < attempts:
            time.sleep(0.5)
    return None


def history(user: Client, conv: str, attempts: int = 5) -> list[str]:
    """Every message body of ``conv``, oldest first (pages of ``after=``; each read retried)."""
    bodies: list[str] = []
    after = 0
    for _ in range(200):
        for attempt in range(attempts):
            try:
                r = user.request("GET", f"/conversations/{conv}/messages?after={after}&limit=100")
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert attempt + 1 < attempts, f"history of {conv} unreadable after {attempts} tries"
            time.sleep(1)
        page = r.json()
        bodies += [m["body"] for m in page["items"]]
        if page["next"] is None or not page["items"]:
            return bodies
        after = page["next"]
    raise AssertionError("history did not end")


@contextmanager
def open_socket(port: int, user: Client) -> Iterator[ClientConnection]:
    """A WebSocket of ``user`` on the gateway published at ``port``, past its ``ready`` frame."""
    with connect(f"ws://127.0.0.1:{port}/ws?token={user.access}", open_timeout=15) as ws:
        ws.send(
            json.dumps({"type": "auth", "token": user.access, "device_id": uuid.uuid4().hex[:8]})
        )
        while json.loads(ws.recv(timeout=15))["type"] != "ready":
            pass
        yield ws


def posted_frames(ws: ClientConnection, quiet: float = 3.0) -> list[dict[str, Any]]:
    """Every message.posted frame until ``quiet`` seconds pass without one."""
    frames: list[dict[str, Any]] = []
    while True:
        try:
            frame = json.loads(ws.recv(timeout=quiet))
        except TimeoutError:
            return frames
        if frame["type"] == "message.posted":
            frames.append(frame)


@dataclass
class Traffic:
    """Posts one message every ``period`` seconds (with retries); records what was acknowledged."""

    sender: Client
    conv: str
    attempts: int = 40
    period: float = 0.2
    acknowledged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set() and n < 2000:
            body = f"traffic-{uuid.uuid4().hex[:8]}-{n}"
            (
                self.acknowledged
                if post(self.sender, self.conv, body, self.attempts)
                else self.failed
            ).append(body)
            n += 1
            time.sleep(self.period)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)


# Shared between the steps (the module runs in order on one deployment).
state: dict[str, Any] = {}


def test_the_fleet_is_up_healthy_and_each_service_is_its_own_redis_user(
    deployment: Deployment,
) -> None:
    for name in (*REDIS_NODES, "postgres", *SERVICES):
        assert len(deployment.containers(name)) == 1, f"{name} is not running"
    for job in JOBS:
        (container,) = deployment.containers(job, all_states=True)
        assert deployment.inspect(container)["State"]["ExitCode"] == 0, job  # type: ignore[index]
    info = deployment.redis("redis-1", "cluster", "info")
    assert "cluster_state:ok" in info and "cluster_size:3" in info, info
    users: set[str] = set()
    for node in REDIS_NODES:
        for line in deployment.redis(node, "client", "list").splitlines():
            users |= {f.split("=", 1)[1] for f in line.split() if f.startswith("user=")}
    assert set(SERVICES) <= users, f"Redis users connected: {sorted(users)}"
    assert "default" not in users, "a client connected as the default user"


def test_a_client_registers_logs_in_posts_and_receives_over_the_published_port(
    deployment: Deployment,
) -> None:
    api = deployment.api
    alice, bob = register(api), register(api)
    r = httpx.post(
        f"{api}/api/v1/auth/login",
        json={"username": alice.username, "password": alice.password},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    alice.access, alice.refresh = r.json()["access_token"], r.json()["refresh_token"]
    conv = group(alice, bob)
    with open_socket(deployment.gateway_ports[0], bob) as ws:
        sent = [post(alice, conv, f"hello-{i}") for i in range(3)]
        assert all(sent)
        frames = posted_frames(ws)
    assert [f["message"]["body"] for f in frames] == ["hello-0", "hello-1", "hello-2"]
    assert history(bob, conv) == ["hello-0", "hello-1", "hello-2"]
    query = {"query": "{ me { id displayName } }"}
    headers = {"Authorization": f"Bearer {alice.access}"}
    eventually(
        lambda: (
            httpx.post(f"{api}/graphql", json=query, headers=headers, timeout=10).json()["data"][
                "me"
            ]["id"]
            == alice.user_id
        ),
        what="GraphQL `me` answers",
    )
    state.update(alice=alice, bob=bob, conv=conv)


def test_auth_restarted_keeps_sessions_and_tokens(deployment: Deployment) -> None:
    alice: Client = state["alice"]
    deployment.compose("restart", "auth")
    deployment.wait_healthy()
    assert alice.request("GET", "/users/me").status_code == 200, (
        "the access token no longer verifies"
    )
    r = httpx.post(
        f"{deployment.api}/api/v1/auth/refresh", json={"refresh_token": alice.refresh}, timeout=30
    )
    assert r.status_code == 200, f"refresh after the restart: {r.status_code} {r.text}"
    alice.access, alice.refresh = r.json()["access_token"], r.json()["refresh_token"]
    assert alice.request("GET", "/users/me").status_code == 200


def test_scaled_out_each_message_is_delivered_once(deployment: Deployment) -> None:
    deployment.compose(
        "up",
        "-d",
        "--no-recreate",
        "--scale",
        "chat=2",
        "--scale",
        "notification=2",
        "--scale",
        "gateway=2",
    )
    deployment.wait_healthy()
    for service in ("chat", "notification", "gateway"):
        assert len(deployment.containers(service)) == 2, service
    alice, bob, conv = state["alice"], state["bob"], state["conv"]
    first, second = deployment.gateway_ports
    with open_socket(first, bob) as ws1, open_socket(second, bob) as ws2:
        with Traffic(alice, conv, period=0.05) as traffic:
            time.sleep(5)
        frames = [posted_frames(ws1), posted_frames(ws2)]
    assert traffic.acknowledged and not traffic.failed, traffic.failed
    for got in frames:
        bodies = [f["message"]["body"] for f in got if f["message"]["body"].startswith("traffic-")]
        assert sorted(bodies) == sorted(traffic.acknowledged), (
            "a message was lost or delivered twice"
        )


def _master_of_first_shard(deployment: Deployment) -> tuple[str, str]:
    """(compose service name, node id) of a master, from CLUSTER NODES (hostnames announced)."""
    for line in deployment.redis("redis-1", "cluster", "nodes").splitlines():
        fields = line.split()
        if "master" in fields[2] and "fail" not in fields[2] and len(fields) > 8:
            host = fields[1].split(",", 1)[1] if "," in fields[1] else ""
            if host in REDIS_NODES:
                return host, fields[0]
    raise AssertionError("no master with a hostname in CLUSTER NODES")


def test_a_redis_master_killed_under_traffic_loses_no_acknowledged_message(
    deployment: Deployment,
) -> None:
    alice, bob, conv = state["alice"], state["bob"], state["conv"]
    node, node_id = _master_of_first_shard(deployment)
    survivor = next(n for n in REDIS_NODES if n != node)
    assert len(deployment.containers(node)) == 1
    with Traffic(alice, conv) as traffic:
        time.sleep(2)
        deployment.compose("kill", node)
        eventually(
            lambda: any(
                line.split()[0] == node_id and "fail" in line.split()[2]
                for line in deployment.redis(survivor, "cluster", "nodes").splitlines()
            ),
            what=f"{node} seen failed",
        )
        eventually(
            lambda: "cluster_state:ok" in deployment.redis(survivor, "cluster", "info"),
            what="cluster ok again",
        )
        time.sleep(5)
    assert traffic.acknowledged, "no message was acknowledged during the failover"
    assert not traffic.failed, f"requests failed beyond retries: {traffic.failed[:5]}"
    stored = set(history(bob, conv))
    lost = [b for b in traffic.acknowledged if b not in stored]
    assert not lost, f"acknowledged but lost: {lost[:5]}"
    deployment.compose("start", node)
    eventually(
        lambda: "cluster_state:ok" in deployment.redis(node, "cluster", "info"), what=f"{node} back"
    )
    deployment.wait_healthy()


def test_a_rolling_upgrade_of_chat_fails_no_request_beyond_retries(deployment: Deployment) -> None:
    alice, bob, conv = state["alice"], state["bob"], state["conv"]
    before = set(deployment.containers("chat"))
    deployment.compose("build", "chat")
    with Traffic(alice, conv) as traffic:
        time.sleep(2)
        deployment.compose("up", "-d", "--no-deps", "--force-recreate", "--scale", "chat=2", "chat")
        deployment.wait_healthy()
        time.sleep(3)
    after = set(deployment.containers("chat"))
    assert len(after) == 2 and not (before & after), "chat's containers were not replaced"
    assert traffic.acknowledged and not traffic.failed, (
        f"failed beyond retries: {traffic.failed[:5]}"
    )
    stored = set(history(bob, conv))
    assert all(b in stored for b in traffic.acknowledged)


def test_prometheus_sees_every_target_up(deployment: Deployment) -> None:
    deployment.compose(
        "--profile",
        "monitoring",
        "up",
        "-d",
        "--no-recreate",
        "--scale",
        "chat=2",
        "--scale",
        "notification=2",
        "--scale",
        "gateway=2",
    )
    deployment.wait_healthy()
    url = f"http://127.0.0.1:{deployment.prometheus_port}/api/v1/targets"
    expected = {f"parley-{s}" for s in SERVICES} | {"redis"}

    def all_up() -> bool:
        targets = httpx.get(url, timeout=10).json()["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return expected <= jobs and all(t["health"] == "up" for t in targets)

    eventually(all_up, timeout=120, what="every Prometheus target up")
    targets = httpx.get(url, timeout=10).json()["data"]["activeTargets"]
    per_job: dict[str, int] = {}
    for t in targets:
        per_job[t["labels"]["job"]] = per_job.get(t["labels"]["job"], 0) + 1
    assert per_job["parley-chat"] == 2 and per_job["parley-gateway"] == 2, per_job
    assert per_job["redis"] == 6, per_job


def test_down_removes_every_container_volume_and_network(deployment: Deployment) -> None:
    deployment.compose("--profile", "monitoring", "down", "-v", "--remove-orphans")
    assert deployment.containers(all_states=True) == []
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind in ("volume", "network"):
        import subprocess

        left = subprocess.run(
            ["docker", kind, "ls", "-q", "--filter", label],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert left == [], f"{kind}s left: {left}"
