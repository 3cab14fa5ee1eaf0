"""The whole fleet as separate processes on the test cluster, driven as a client would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from parley.cluster import LocalCluster, parse_ports

SERVICES = ("auth", "user", "chat", "notification", "gateway")
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    """Five service processes; ``api`` is the gateway's base URL."""

    ports: dict[str, int]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ports['gateway']}/ws"

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.logs / f"{service}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(fleet: Fleet, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    with httpx.Client(timeout=2) as client:
        while pending and time.monotonic() < deadline:
            for service in list(pending):
                proc = fleet.processes[service]
                if proc.poll() is not None:
                    raise RuntimeError(f"{service} exited: {fleet.log_tail(service)}")
                try:
                    url = f"http://127.0.0.1:{fleet.ports[service]}/health/ready"
                    if client.get(url).status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"not ready: {sorted(pending)}")


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[LocalCluster]:
    """A cluster of the fleet's own (``PARLEY_TEST_E2E_PORTS``, 7141-7146), fresh each session.

    The fleet's consumer groups are the real ones (``notification`` on ``chat.events``, ...): on
    the shared test cluster they would take partitions from the service suites' instances.
    """
    ports = parse_ports(os.environ.get("PARLEY_TEST_E2E_PORTS", "7141-7146"))
    cluster = LocalCluster(ROOT / ".parley", ports)
    cluster.reset()
    cluster.up()
    yield cluster
    cluster.reset()


@pytest.fixture(scope="session")
def fleet(e2e_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """auth, user, chat, notification and gateway, each its own process, on their own cluster."""
    redis_url = e2e_cluster.url()
    home = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(ports={s: _free_port() for s in SERVICES}, logs=home)
    base_env = dict(os.environ, PARLEY_HOME=str(home), PARLEY_LOG_FORMAT="json")
    for service in SERVICES:
        prefix = service.upper()
        env = dict(base_env)
        env[f"{prefix}_PORT"] = str(fleet.ports[service])
        env[f"{prefix}_REDIS_URL"] = redis_url
        if service != "gateway":
            env[f"{prefix}_DATABASE_URL"] = f"sqlite+aiosqlite:///{home}/{service}.db"
        env.update(_fast_settings(service))
        with (home / f"{service}.log").open("wb") as log:
            fleet.processes[service] = subprocess.Popen(
                [str(BIN / f"parley-{service}"), "serve"], env=env, stdout=log, stderr=log
            )
    try:
        _wait_ready(fleet, 90)
        yield fleet
    finally:
        for proc in fleet.processes.values():
            proc.send_signal(signal.SIGTERM)
        for proc in fleet.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _fast_settings(service: str) -> dict[str, str]:
    """Cheaper password hashing and roomy per-address budgets: every test client is 127.0.0.1."""
    if service == "auth":
        return {"AUTH_ARGON2_TIME_COST": "1", "AUTH_ARGON2_MEMORY_COST": "8192"}
    if service == "gateway":
        return {
            "GATEWAY_AUTH_RATE": "6000",
            "GATEWAY_AUTH_BURST": "1000",
            "GATEWAY_ADDRESS_RATE": "5000",
            "GATEWAY_ADDRESS_BURST": "5000",
        }
    return {}


@dataclass
class User:
    """A registered user and an HTTP client that sends its token."""

    id: str
    username: str
    password: str
    access_token: str
    refresh_token: str
    http: httpx.Client

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.http.get(path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return self.http.post(path, json=json, **kw)  # type: ignore[arg-type]


@pytest.fixture
def register(fleet: Fleet) -> Iterator[Callable[[], User]]:
    """Registers fresh users (random names) and gives each an authenticated client."""
    clients: list[httpx.Client] = []

    def make() -> User:
        name = f"u{uuid.uuid4().hex[:12]}"
        password = f"pw-{uuid.uuid4().hex}"
        body = {"username": name, "password": password, "display_name": name.upper()}
        r = httpx.post(f"{fleet.api}/api/v1/auth/register", json=body, timeout=15)
        assert r.status_code == 201, r.text
        tokens = r.json()
        http = httpx.Client(
            base_url=f"{fleet.api}/api/v1",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=15,
        )
        clients.append(http)
        return User(
            tokens["user_id"], name, password, tokens["access_token"], tokens["refresh_token"], http
        )

    yield make
    for http in clients:
        http.close()


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    assert check()


@pytest.fixture
def eventually() -> Callable[..., None]:
    """Wait until ``check()`` holds (events travel asynchronously between services)."""
    return _eventually
