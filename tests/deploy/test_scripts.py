"""The shell scripts of deploy/: POSIX sh syntax, and make-secrets.sh's promises."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "deploy").rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses_as_posix_sh(script: Path) -> None:
    # The images have dash or busybox sh, not necessarily bash.
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert script.read_text().startswith("#!/bin/sh\n")


def test_make_secrets_creates_every_secret_compose_mounts(tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(target)],
        check=True,
        capture_output=True,
    )
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, secret in compose["secrets"].items():
        assert secret["file"] == f"./deploy/secrets/{name}"
        assert (target / name).read_text().strip(), name
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_make_secrets_keeps_existing_secrets(tmp_path: Path) -> None:
    script = ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(tmp_path)]
    subprocess.run(script, check=True, capture_output=True)
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    again = subprocess.run(script, check=True, capture_output=True, text=True)
    assert again.stdout == ""
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_each_database_url_carries_the_password_of_its_postgres_role(tmp_path: Path) -> None:
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for service in ("auth", "user", "chat", "notification"):
        password = (tmp_path / f"postgres_{service}_password").read_text().strip()
        url = (tmp_path / f"{service}_database_url").read_text().strip()
        assert url == (
            f"postgresql+asyncpg://parley_{service}:{password}@postgres:5432/parley_{service}"
        )
