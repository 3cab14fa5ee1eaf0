"""Entry point: ``parley-notification [serve|migrate|check-config]``."""

from __future__ import annotations

import sys

from notification.bootstrap import MIGRATIONS, build
from notification.config import Settings
from shared.service.runner import run_service


def main() -> None:
    sys.exit(run_service("notification", Settings, build, migrations=MIGRATIONS))
