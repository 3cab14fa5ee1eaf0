"""Fixtures of the deployment checks: the parsed compose file and paths of the deploy files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


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
