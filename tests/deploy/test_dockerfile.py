"""The Dockerfile, read with the official BuildKit parser (the ``dockerfile`` package), and the
health probe it installs."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import dockerfile  # type: ignore[import-not-found]  # no stubs; a compiled module
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "deploy" / "container" / "healthcheck.py"


@pytest.fixture(scope="module")
def commands() -> tuple[Any, ...]:
    """Every instruction of the Dockerfile, continuation lines joined."""
    return tuple(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def _stages(commands: tuple[Any, ...]) -> list[list[Any]]:
    stages: list[list[Any]] = []
    for command in commands:
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def _default_args(commands: tuple[Any, ...]) -> dict[str, str]:
    args = {}
    for command in commands:
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, value = command.value[0].split("=", 1)
            args[name] = value
    return args


def test_the_build_is_multi_stage_and_the_runtime_copies_only_the_venv(
    commands: tuple[Any, ...],
) -> None:
    stages = _stages(commands)
    assert len(stages) >= 3
    final = stages[-1]
    copies = [c for c in final if c.cmd == "COPY"]
    assert any("--from=builder" in c.flags and c.value[0] == "/app/.venv" for c in copies)
    assert not any(c.value[0] == "." for c in copies), "the runtime stage must not copy sources"


def test_base_images_are_pinned_and_nothing_is_downloaded_with_add(
    commands: tuple[Any, ...],
) -> None:
    args = _default_args(commands)
    names = {c.value[2] for c in commands if c.cmd == "FROM" and len(c.value) == 3}
    for command in (c for c in commands if c.cmd == "FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], command.value[0])
        if image in names:
            continue  # a previous stage
        _, _, tag = image.rpartition(":")
        assert re.match(r"\d+\.\d+\.\d+", tag), f"pin {image!r} to a full version"
    assert not [c for c in commands if c.cmd == "ADD" and "://" in c.original]


def test_the_runtime_runs_as_a_non_root_user_with_a_healthcheck(
    commands: tuple[Any, ...],
) -> None:
    final = _stages(commands)[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users, "the final stage needs a USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [c for c in final if c.cmd == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert healthchecks[0].value[:3] == ("CMD", "python", "/app/healthcheck.py")
    entrypoints = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].json, "exec form, so signals reach the service"


def test_dependencies_install_from_the_lock_without_dev_tools(commands: tuple[Any, ...]) -> None:
    syncs = [c.value[0] for c in commands if c.cmd == "RUN" and "uv sync" in c.value[0]]
    assert len(syncs) == 2, "one layer for dependencies, one for the workspace"
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync
        assert "$PACKAGES" in sync and "SERVICE" not in sync, (
            "the builder must not depend on SERVICE"
        )
    # The five services, and not the developer CLI (whose test tools would enter the image).
    (packages,) = [c.value for c in commands if c.cmd == "ENV" and c.value[0] == "PACKAGES"]
    named = packages[1].strip('"').split()
    assert named == [
        w
        for s in ("auth", "user", "chat", "notification", "gateway")
        for w in ("--package", f"parley-{s}")
    ]
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_the_dependency_layer_sees_every_workspace_member(commands: tuple[Any, ...]) -> None:
    # uv resolves the workspace from the members' pyproject files: a member missing from the
    # first COPY layer would break `uv sync --frozen` at build time.
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = {
        str(path.parent.relative_to(ROOT))
        for pattern in root["tool"]["uv"]["workspace"]["members"]
        for path in ROOT.glob(f"{pattern}/pyproject.toml")
    }
    copied = {
        c.value[0].removesuffix("/pyproject.toml")
        for c in commands
        if c.cmd == "COPY" and c.value[0].endswith("/pyproject.toml")
    }
    assert members and members == copied


def test_dockerignore_keeps_secrets_state_and_tests_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".parley", "deploy/secrets", "**/tests"} <= ignored
    assert "!deploy/container" in ignored, "the health probe is copied into the image"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health/ready" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _probe(env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, timeout=10
    ).returncode


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_the_health_probe_reports_the_services_readiness_on_its_configured_port(
    health_server: HTTPServer, status: int, exit_code: int
) -> None:
    _Health.status = status
    port = str(health_server.server_address[1])
    assert _probe({"PARLEY_SERVICE": "chat", "CHAT_PORT": port}) == exit_code


def test_the_health_probe_fails_when_nothing_listens() -> None:
    with HTTPServer(("127.0.0.1", 0), _Health) as closed:
        port = str(closed.server_address[1])
    assert _probe({"PARLEY_SERVICE": "auth", "AUTH_PORT": port}) == 1
