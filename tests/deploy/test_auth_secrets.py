"""Auth's keys in the deployment: compose wires them as secrets, and the real auth process refuses
to start without them, or with a key-encryption key that does not open its key store."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.fleet import free_port, service_env, service_script, sqlite_url
from shared.sessions import Keyring

ROOT = Path(__file__).resolve().parents[2]
TRANSIT = "t1:" + Keyring.generate_key()


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


# ---------------------------------------------------------------- compose.yaml and make-secrets.sh


def _secret_env(service: dict[str, Any], variable: str) -> str:
    """The secret a ``*_FILE`` variable of ``service`` reads (checked to be mounted)."""
    path = service["environment"][variable]
    assert path.startswith("/run/secrets/"), path
    name = path.removeprefix("/run/secrets/")
    assert name in service["secrets"], f"{variable} reads {name}, which is not mounted"
    return str(name)


def test_compose_runs_auth_in_production_with_its_keys_as_secrets(
    compose: dict[str, Any], compose_services: dict[str, dict[str, Any]]
) -> None:
    auth, gateway = compose_services["auth"], compose_services["gateway"]
    assert auth["environment"]["AUTH_ENVIRONMENT"] == "production"
    assert gateway["environment"]["GATEWAY_ENVIRONMENT"] == "production"
    used = {
        _secret_env(auth, "AUTH_KEY_ENCRYPTION_KEY_FILE"),
        _secret_env(auth, "AUTH_OLD_KEY_ENCRYPTION_KEYS_FILE"),
        _secret_env(auth, "AUTH_TRANSIT_KEYS_FILE"),
    }
    # One transit keyring, shared: what the gateway seals, auth opens.
    assert _secret_env(gateway, "GATEWAY_TRANSIT_KEYS_FILE") == _secret_env(
        auth, "AUTH_TRANSIT_KEYS_FILE"
    )
    for name in used:
        assert compose["secrets"][name] == {"file": f"./deploy/secrets/{name}"}
    assert not any("KEY" in v and not v.endswith("_FILE") for v in auth["environment"])


def test_make_secrets_writes_keys_that_auth_and_the_gateway_accept(tmp_path: Path) -> None:
    subprocess.run(["sh", str(ROOT / "deploy/make-secrets.sh"), str(tmp_path)], check=True)
    kek = (tmp_path / "auth_key_encryption_key").read_text().strip()
    assert len(base64.urlsafe_b64decode(kek + "=" * (-len(kek) % 4))) == 32
    old = (tmp_path / "auth_old_key_encryption_keys").read_text().strip()
    assert [k for k in old.split(",") if k.strip()] == []
    keyring = Keyring.parse((tmp_path / "transit_keys").read_text().strip())
    assert keyring.key_ids == {"t1"}
    again = subprocess.run(
        ["sh", str(ROOT / "deploy/make-secrets.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "auth_key_encryption_key" not in again.stdout  # an existing key is never replaced
    assert (tmp_path / "auth_key_encryption_key").read_text().strip() == kek


# ---------------------------------------------------------------- the real auth process


class Auth:
    """Runs ``parley-auth serve`` on the test cluster with one SQLite database across runs."""

    def __init__(self, redis_url: str, home: Path) -> None:
        self.redis_url = redis_url
        self.home = home
        self.database_url = sqlite_url(home, "auth")

    def env(self, **extra: str) -> dict[str, str]:
        self.port = free_port()
        return service_env(
            "auth",
            port=self.port,
            redis_url=self.redis_url,
            home=self.home,
            database_url=self.database_url,
            extra={
                "AUTH_ENVIRONMENT": "production",
                "AUTH_ARGON2_MEMORY_COST": "8",
                "AUTH_ARGON2_PARALLELISM": "1",
                **extra,
            },
        )

    def refused(self, **extra: str) -> str:
        """The process's one-line complaint: it must exit on its own, not serve."""
        done = subprocess.run(
            [service_script("auth"), "serve"],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("parley-auth:")]
        assert len(lines) == 1, done.stderr
        assert "Traceback" not in done.stderr
        return lines[0]

    def serves(self, **extra: str) -> None:
        """The process becomes ready; then it is stopped."""
        log = (self.home / "auth.log").open("w")
        process = subprocess.Popen(
            [service_script("auth"), "serve"],
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, (self.home / "auth.log").read_text()
                try:
                    r = httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2)
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            pytest.fail("auth did not become ready: " + (self.home / "auth.log").read_text())
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            log.close()


@pytest.fixture
def auth(redis_url: str, tmp_path: Path) -> Auth:
    return Auth(redis_url, tmp_path)


def test_auth_refuses_to_start_in_production_without_a_key_encryption_key(auth: Auth) -> None:
    line = auth.refused(AUTH_TRANSIT_KEYS=TRANSIT)
    assert "AUTH_KEY_ENCRYPTION_KEY" in line and "required" in line


def test_auth_refuses_to_start_in_production_without_transit_keys(auth: Auth) -> None:
    line = auth.refused(AUTH_KEY_ENCRYPTION_KEY=_key())
    assert "AUTH_TRANSIT_KEYS" in line and "required" in line


def test_a_replaced_key_encryption_key_is_a_one_line_error_until_the_old_one_is_kept(
    auth: Auth,
) -> None:
    first, second = _key(), _key()
    auth.serves(AUTH_KEY_ENCRYPTION_KEY=first, AUTH_TRANSIT_KEYS=TRANSIT)  # makes a signing key
    line = auth.refused(AUTH_KEY_ENCRYPTION_KEY=second, AUTH_TRANSIT_KEYS=TRANSIT)
    assert "signing keys in the database do not open" in line
    assert "AUTH_OLD_KEY_ENCRYPTION_KEYS" in line
    # The rotation as docs/operations.md describes it: the new key seals, the old one still opens.
    auth.serves(
        AUTH_KEY_ENCRYPTION_KEY=second,
        AUTH_OLD_KEY_ENCRYPTION_KEYS=first,
        AUTH_TRANSIT_KEYS=TRANSIT,
    )
