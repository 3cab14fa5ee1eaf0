"""OpenTelemetry tracing for the fleet, switched on by the standard ``OTEL_*`` variables.

See :mod:`shared.tracing.setup` for the switch and :mod:`shared.tracing.spans` for the span
sites; docs/operations.md lists the spans and their attributes.
"""

from shared.tracing.setup import TracingConfigError, configure, shutdown, wanted
from shared.tracing.spans import (
    OpenSpan,
    current_ids,
    current_traceparent,
    format_traceparent,
    ids_of,
    on,
    open_span,
    parent_context,
    record_error,
    span,
)

__all__ = [
    "OpenSpan",
    "TracingConfigError",
    "configure",
    "current_ids",
    "current_traceparent",
    "format_traceparent",
    "ids_of",
    "on",
    "open_span",
    "parent_context",
    "record_error",
    "shutdown",
    "span",
    "wanted",
]
