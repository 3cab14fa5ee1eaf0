"""The only wiring of the notification service.

Settings -> clients -> stores -> handlers -> subscribers.
"""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream

from shared.service.app import service_app
from shared.service.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


def build(runtime: ServiceRuntime) -> AsgiFastStream:
    """The notification service's ASGI app on a started runtime."""
    return service_app(runtime)
