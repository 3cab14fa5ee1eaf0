"""The process's tracer: None while tracing is off, which every span site checks first."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

tracer: Tracer | None = None
"""Set by :func:`shared.tracing.configure` when the ``OTEL_*`` variables switch tracing on."""

provider: TracerProvider | None = None
