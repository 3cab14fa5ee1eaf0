"""Entry point: ``parley-auth [serve|migrate|check-config]``."""

from __future__ import annotations

import sys

from auth.bootstrap import MIGRATIONS, build, check_key_store
from auth.config import Settings
from shared.service.runner import run_service


def main() -> None:
    sys.exit(run_service("auth", Settings, build, migrations=MIGRATIONS, preflight=check_key_store))
