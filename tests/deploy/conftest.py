"""Fixtures of the deployment checks: the parsed compose file, paths of the deploy files, and
checkov (pinned, run as a uv tool apart from the workspace's dependencies)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = "checkov==3.3.30"
Checkov = Callable[[str, Path], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """compose.yaml as data (YAML anchors and merge keys resolved)."""
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def compose_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``services`` section of compose.yaml."""
    services = compose["services"]
    assert isinstance(services, dict)
    return services


@pytest.fixture(scope="session")
def checkov() -> Checkov:
    """``checkov(framework, directory)``: checkov's scan of ``directory``, offline."""
    uv = subprocess.run(
        [str(ROOT / "scripts" / "ensure-uv")], capture_output=True, text=True, check=True
    ).stdout.strip()

    def scan(framework: str, directory: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                uv,
                "tool",
                "run",
                "--from",
                CHECKOV,
                "checkov",
                "--skip-download",
                "--compact",
                "--quiet",
                "--framework",
                framework,
                "-d",
                str(directory),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        )

    return scan
