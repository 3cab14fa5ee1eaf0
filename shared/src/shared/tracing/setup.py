"""Switching tracing on from the standard ``OTEL_*`` variables, and flushing it at exit.

Tracing is on when an OTLP endpoint is named (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=console``, unless
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Off, nothing of the SDK is imported
and every span site costs one ``is None`` check. On, spans go through a batch processor
(``OTEL_BSP_*``) to an OTLP/HTTP protobuf exporter (``OTEL_EXPORTER_OTLP_*``); the sampler is
``OTEL_TRACES_SAMPLER`` (``parentbased_always_on`` by default) and the resource takes
``OTEL_SERVICE_NAME`` (else the service's name) and ``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.tracing import state

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

_EXPORTERS = frozenset({"otlp", "console", "none"})
_PROTOCOLS = frozenset({"", "http/protobuf"})


class TracingConfigError(ValueError):
    """An ``OTEL_*`` variable asks for something this fleet does not do; the message names it."""


def _exporters(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    names = {n.strip() for n in raw.split(",") if n.strip()}
    unknown = names - _EXPORTERS
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(sorted(unknown))} is not one of otlp, console, none"
        )
    return names


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the variables in ``environ`` switch tracing on (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = _exporters(environ)
    if names == {"none"}:
        return False
    if "console" in names:
        return True
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(endpoint or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure(
    service: str,
    *,
    environ: Mapping[str, str] = os.environ,
    exporter: SpanExporter | None = None,
) -> bool:
    """Switch tracing on for ``service`` when ``environ`` asks for it; returns whether it is on.

    ``exporter`` replaces the one the variables name (tests pass an in-memory exporter; it is
    then used with a simple, synchronous processor). Raises :class:`TracingConfigError`.
    """
    if exporter is None and not wanted(environ):
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    resource = Resource.create(
        {
            SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service,
            "service.namespace": "parley",
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        names = _exporters(environ) or {"otlp"}
        if "otlp" in names:
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(environ)))
        if "console" in names:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    shutdown()
    state.provider = provider
    state.tracer = provider.get_tracer("parley")
    return True


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or ""
    ).strip()
    if protocol not in _PROTOCOLS:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol} is not supported (only http/protobuf)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def shutdown() -> None:
    """Export what is buffered and switch tracing off (at the end of the process)."""
    provider, state.provider, state.tracer = state.provider, None, None
    if provider is not None:
        provider.shutdown()
