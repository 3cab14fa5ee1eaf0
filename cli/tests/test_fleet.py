"""The fleet launcher's environment rules (the processes themselves are exercised by tests/e2e)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from parley.fleet import DATA_SERVICES, FleetError, free_port, service_env, sqlite_url

pytestmark = [pytest.mark.unit]

REDIS = "redis://127.0.0.1:7001"


def test_a_data_service_gets_its_port_redis_database_home_and_json_logs(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path, "chat")
    env = service_env("chat", port=9001, redis_url=REDIS, home=tmp_path, database_url=db, base={})

    assert env["CHAT_PORT"] == "9001"
    assert env["CHAT_REDIS_URL"] == REDIS
    assert env["CHAT_DATABASE_URL"] == f"sqlite+aiosqlite:///{tmp_path}/chat.db"
    assert env["PARLEY_HOME"] == str(tmp_path)
    assert env["PARLEY_LOG_FORMAT"] == "json"


def test_the_gateway_gets_no_database(tmp_path: Path) -> None:
    env = service_env(
        "gateway", port=9002, redis_url=REDIS, home=tmp_path, database_url="ignored", base={}
    )

    assert "GATEWAY_DATABASE_URL" not in env
    assert env["GATEWAY_PORT"] == "9002"


def test_extra_env_overrides_the_fleets_own_and_base_is_kept(tmp_path: Path) -> None:
    env = service_env(
        "gateway",
        port=9003,
        redis_url=REDIS,
        home=tmp_path,
        database_url=None,
        extra={"GATEWAY_RESPONSE_CACHE": "false", "PARLEY_LOG_FORMAT": "text"},
        base={"PATH": "/bin"},
    )

    assert env["GATEWAY_RESPONSE_CACHE"] == "false"
    assert env["PARLEY_LOG_FORMAT"] == "text"
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize("service", DATA_SERVICES)
def test_a_data_service_without_a_database_url_is_refused(service: str, tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="database URL"):
        service_env(service, port=1, redis_url=REDIS, home=tmp_path, database_url=None, base={})


def test_an_unknown_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="unknown service"):
        service_env("billing", port=1, redis_url=REDIS, home=tmp_path, database_url=None)


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
