"""The compose fleet, built and run in containers (``make deploy-test``).

One compose project of its own (``PARLEY_DEPLOY_PROJECT``, default ``parley-deploytest``), started
once for the module: ``scripts/build-images`` (Debian/PyPI images, cached), secrets from
``deploy/make-secrets.sh``, ``compose build``, ``compose up -d``. The tests then drive it through
its published ports only (127.0.0.1, ``PARLEY_TEST_DEPLOY_LIVE_PORTS``: two gateway ports, then
Prometheus and Alertmanager), and tear it down with ``compose down -v``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("PARLEY_DEPLOY_PROJECT", "parley-deploytest")
SERVICES = ("auth", "user", "chat", "notification", "gateway")
JOBS = (
    "redis-cluster-init",
    "auth-migrate",
    "user-migrate",
    "chat-migrate",
    "notification-migrate",
)
REDIS_NODES = tuple(f"redis-{i}" for i in range(1, 7))


def _ports() -> list[int]:
    first, last = os.environ.get("PARLEY_TEST_DEPLOY_LIVE_PORTS", "7187-7190").split("-")
    ports = list(range(int(first), int(last) + 1))
    assert len(ports) >= 4, "PARLEY_TEST_DEPLOY_LIVE_PORTS needs 4 ports"
    return ports


def compose_command() -> list[str]:
    """``docker compose`` (the plugin) when it answers, else Debian's ``docker-compose``."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found, (
        "neither `docker compose` nor `docker-compose` (Debian: docker-compose) is installed"
    )
    return [found]


@dataclass
class Deployment:
    """The running compose project and how to reach it."""

    command: list[str]
    env: dict[str, str]
    prometheus_port: int

    @property
    def gateway_ports(self) -> list[int]:
        """The host ports of the running gateways (each takes one of the published range)."""
        ports = []
        for container in self.containers("gateway"):
            out = subprocess.run(
                ["docker", "port", container, "8080/tcp"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            ports.append(int(out.split()[0].rsplit(":", 1)[1]))
        return sorted(ports)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.gateway_ports[0]}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        result = subprocess.run(
            [*self.command, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`compose {' '.join(args)}` exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def containers(self, service: str | None = None, *, all_states: bool = False) -> list[str]:
        """Container ids of the project (of one service), from the labels compose sets."""
        args = ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            args.append("-a")
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return out.split()

    def inspect(self, container: str) -> dict[str, object]:
        out = subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True
        ).stdout
        return dict(json.loads(out)[0])

    def redis(self, node: str, *args: str) -> str:
        """redis-cli as the admin user, run inside a node's container."""
        (container,) = self.containers(node)
        script = (
            'REDISCLI_AUTH="$(cat /run/secrets/redis_admin_password)" '
            '"$(command -v valkey-cli || echo redis-cli)" --no-auth-warning --user admin "$@"'
        )
        result = subprocess.run(
            ["docker", "exec", container, "sh", "-c", script, "--", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"redis-cli {args} on {node}: {result.stderr}"
        return result.stdout

    def wait_healthy(self, timeout: float = 300) -> None:
        """Every long-running container healthy, every one-shot job exited 0."""
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        while time.monotonic() < deadline:
            problems = []
            for container in self.containers(all_states=True):
                info = self.inspect(container)
                state = info["State"]
                assert isinstance(state, dict)
                labels = info["Config"]["Labels"]  # type: ignore[index]
                service = labels["com.docker.compose.service"]
                name = str(info["Name"]).lstrip("/")
                if service in JOBS:
                    if state["Status"] == "exited" and state["ExitCode"] != 0:
                        pytest.fail(f"{name} exited {state['ExitCode']}: {self.logs(container)}")
                    if state["Status"] != "exited":
                        problems.append(f"{name}: {state['Status']}")
                elif state.get("Health", {}).get("Status") != "healthy":
                    problems.append(
                        f"{name}: {state['Status']} {state.get('Health', {}).get('Status')}"
                    )
            if not problems:
                return
            time.sleep(2)
        pytest.fail(f"not healthy after {timeout:.0f}s: {problems}")

    def logs(self, container: str) -> str:
        out = subprocess.run(
            ["docker", "logs", "--tail", "30", container], capture_output=True, text=True
        )
        return (out.stdout + out.stderr)[-3000:]


def _environment(ports: list[int]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COMPOSE_PROJECT_NAME=PROJECT,
        PARLEY_GATEWAY_PUBLISH=f"127.0.0.1:{ports[0]}-{ports[1]}",
        PARLEY_PROMETHEUS_PUBLISH=str(ports[2]),
        PARLEY_ALERTMANAGER_PUBLISH=str(ports[3]),
    )
    # The images scripts/build-images made (Debian's packages, PyPI), unless told to pull.
    local = ROOT / "deploy" / "local-images.env"
    if os.environ.get("PARLEY_DEPLOY_IMAGES", "local") == "local":
        for line in local.read_text().splitlines():
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env.setdefault(key, value)
        env.setdefault("PARLEY_BUILD_NETWORK", "host")
    return env


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.fail(
            "no Docker engine answers: run `scripts/ensure-docker start` (make deploy-test does)"
        )
    ports = _ports()
    others_before = _other_containers()
    if os.environ.get("PARLEY_DEPLOY_IMAGES", "local") == "local":
        subprocess.run([str(ROOT / "scripts" / "build-images")], cwd=ROOT, check=True)
    subprocess.run(["sh", "deploy/make-secrets.sh"], cwd=ROOT, check=True, capture_output=True)
    deployment = Deployment(compose_command(), _environment(ports), ports[2])
    deployment.compose("down", "-v", "--remove-orphans", check=False)  # an interrupted earlier run
    try:
        deployment.compose("build")
        deployment.compose("up", "-d")
        deployment.wait_healthy()
        yield deployment
    finally:
        deployment.compose("--profile", "monitoring", "down", "-v", "--remove-orphans", check=False)
        assert _other_containers() == others_before, "containers of other projects changed"


def _other_containers() -> set[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, check=False
    ).stdout.split()
    mine = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return set(out) - set(mine)


def eventually(check: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    assert check(), f"not within {timeout:.0f}s: {what}"
