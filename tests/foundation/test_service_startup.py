"""A service started with bad configuration ends with one clear line, not a traceback wall."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _run(
    service: str, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(f"{service.upper()}_")}
    full.update(env)
    return subprocess.run(
        [str(BIN / f"parley-{service}"), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("parley-")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_malformed_port_names_the_variable() -> None:
    line = _one_clear_line(_run("chat", {"CHAT_PORT": "eighty"}, "check-config"))
    assert "configuration error" in line and "CHAT_PORT" in line


def test_a_malformed_database_url_names_the_variable() -> None:
    line = _one_clear_line(_run("auth", {"AUTH_DATABASE_URL": "mysql:/nowhere"}, "check-config"))
    assert "AUTH_DATABASE_URL" in line


def test_a_redis_url_of_another_scheme_is_refused() -> None:
    line = _one_clear_line(
        _run("user", {"USER_REDIS_URL": "http://127.0.0.1:7001"}, "check-config")
    )
    assert "USER_REDIS_URL" in line


def test_an_unreachable_redis_ends_start_up_with_one_line(tmp_path: Path) -> None:
    env = {
        "NOTIFICATION_REDIS_URL": f"redis://127.0.0.1:{_free_port()}",
        "NOTIFICATION_REDIS_CONNECT_TIMEOUT": "2",
        "NOTIFICATION_PORT": str(_free_port()),
        "NOTIFICATION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/n.db",
    }
    line = _one_clear_line(_run("notification", env))
    assert "cannot reach Redis" in line


def test_a_port_in_use_ends_start_up_with_one_line(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_clear_line(
            _run("gateway", {"GATEWAY_PORT": str(port), "GATEWAY_REDIS_URL": redis_url})
        )
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("sqlite+aiosqlite:///ok.db\n")
    ok = _run("chat", {"CHAT_DATABASE_URL_FILE": str(secret)}, "check-config")
    assert ok.returncode == 0, ok.stderr
    missing = _run("chat", {"CHAT_DATABASE_URL_FILE": str(tmp_path / "absent")}, "check-config")
    assert "CHAT_DATABASE_URL_FILE" in _one_clear_line(missing)


def test_an_unknown_command_prints_the_usage() -> None:
    result = _run("chat", {}, "dance")
    assert result.returncode == 2
    assert "usage: parley-chat" in result.stderr
