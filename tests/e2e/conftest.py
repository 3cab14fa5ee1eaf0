"""The whole fleet as separate processes on the test cluster, driven as a client would."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright
from websockets.sync.client import ClientConnection

from parley.acl import ClusterAcl
from parley.cluster import LocalCluster, parse_ports
from parley.containers import cluster_for_tests
from parley.fleet import SERVICES, Fleet

ROOT = Path(__file__).resolve().parents[2]

FAST_SETTINGS = {
    # Cheaper password hashing: registration is on every test's path. The memory budget lets two
    # hashes run at once, so a burst of logins shows the bound (test_attacks_auth.py).
    "auth": {
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST": "8192",
        "AUTH_ARGON2_MEMORY_BUDGET": "16384",
    },
    # Roomy per-address budgets: every test client is 127.0.0.1.
    "gateway": {
        "GATEWAY_AUTH_RATE": "6000",
        "GATEWAY_AUTH_BURST": "1000",
        "GATEWAY_ADDRESS_RATE": "5000",
        "GATEWAY_ADDRESS_BURST": "5000",
        "GATEWAY_WS_HANDSHAKE_RATE": "5000",
        "GATEWAY_WS_HANDSHAKE_BURST": "5000",
    },
}


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[LocalCluster]:
    """A cluster of the fleet's own (``PARLEY_TEST_E2E_PORTS``, 7141-7146), fresh each session.

    The fleet's consumer groups are the real ones (``notification`` on ``chat.events``, ...): on
    the shared test cluster they would take partitions from the service suites' instances.
    Its nodes have the production ACL users (deploy/redis/users.acl, default user off), and each
    service logs in as its own: a right the ACL lacks fails the suite.
    """
    with fresh_cluster("PARLEY_TEST_E2E_PORTS", "7141-7146") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fleet(e2e_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """auth, user, chat, notification and gateway, each its own process, on their own cluster."""
    with running_fleet(e2e_cluster, tmp_path_factory.mktemp("fleet")) as running:
        yield running


@contextmanager
def fresh_cluster(variable: str, default: str) -> Iterator[LocalCluster]:
    """A cluster on the ports ``variable`` names (else ``default``), wiped before and after, with
    the fleet's ACL users (fresh random passwords)."""
    ports = parse_ports(os.environ.get(variable, default))
    cluster = cluster_for_tests(ROOT / ".parley", ports, acl=ClusterAcl.random())
    cluster.reset()
    try:
        cluster.up()  # inside: a node that failed to start leaves none of the others running
        yield cluster
    finally:
        cluster.reset()


@contextmanager
def running_fleet(cluster: LocalCluster, home: Path) -> Iterator[Fleet]:
    """The five services on ``cluster``, started and ready, each as its own ACL user (when the
    cluster has ACL users); stopped afterwards."""
    users = {s: cluster.acl.credentials(s) for s in SERVICES} if cluster.acl else None
    with Fleet(cluster.url(), home, extra_env=FAST_SETTINGS, redis_users=users) as running:
        running.start(timeout=90)
        yield running


def next_frame(ws: ClientConnection, types: set[str], timeout: float = 10.0) -> dict[str, Any]:
    """The next frame of one of ``types`` (others, e.g. presence or errors of a race, skipped)."""
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if frame["type"] in types:
            return dict(frame)


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


def sign_up(fleet: Fleet) -> tuple[str, str, dict[str, Any], httpx.Client]:
    """A fresh user (random name) registered through the gateway: its name, password, the
    register reply's tokens and an API client carrying its access token."""
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
    return name, password, tokens, http


@pytest.fixture
def register(fleet: Fleet) -> Iterator[Callable[[], User]]:
    """Registers fresh users (random names) and gives each an authenticated client."""
    clients: list[httpx.Client] = []

    def make() -> User:
        name, password, tokens, http = sign_up(fleet)
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


CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium); CI installs it")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Any, fleet: Fleet) -> Iterator[Callable[..., Any]]:
    """Opens the client in a fresh browser context (its own storage: another person)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{fleet.api}/")
        return page

    yield make
    for context in contexts:
        context.close()
