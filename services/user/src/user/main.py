"""Entry point: ``parley-user [serve|migrate|check-config]``."""

from __future__ import annotations

import sys

from shared.service.runner import run_service
from user.bootstrap import MIGRATIONS, build
from user.config import Settings


def main() -> None:
    sys.exit(run_service("user", Settings, build, migrations=MIGRATIONS))
