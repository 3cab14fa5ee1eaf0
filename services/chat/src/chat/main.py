"""Entry point: ``parley-chat [serve|migrate|check-config]``."""

from __future__ import annotations

import sys

from chat.bootstrap import MIGRATIONS, build
from chat.config import Settings
from shared.service.runner import run_service


def main() -> None:
    sys.exit(run_service("chat", Settings, build, migrations=MIGRATIONS))
