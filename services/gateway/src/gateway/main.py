"""Entry point: ``parley-gateway [serve|check-config]``."""

from __future__ import annotations

import sys

from gateway.bootstrap import build
from gateway.config import Settings
from shared.service.runner import run_service


def main() -> None:
    sys.exit(run_service("gateway", Settings, build))
