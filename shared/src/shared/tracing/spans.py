"""Span sites: each is one ``state.tracer is None`` check while tracing is off.

The fleet's trace context travels in W3C ``traceparent`` strings (HTTP headers, message
envelopes), so these functions take and give such strings rather than SDK objects:

- :func:`span` starts a span as the current one, under the current span or under the
  ``traceparent`` given (a message's, a client's). ``child_only`` spans (Redis round trips, SQL)
  are made only inside a recording span: background work (polls, heartbeats) makes no traces.
- :func:`open_span` is the same for code that cannot wrap a block (an ASGI middleware);
  :meth:`OpenSpan.close` ends it.
- :func:`current_traceparent` is what a message sent now carries; :func:`current_ids` is what
  a log line names.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from shared.tracing import state

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

Attributes = Mapping[str, str | int | float | bool]

_NULL: AbstractContextManager[None] = nullcontext()


def on() -> bool:
    """Whether tracing is on in this process."""
    return state.tracer is not None


def _kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return {
        "server": SpanKind.SERVER,
        "client": SpanKind.CLIENT,
        "producer": SpanKind.PRODUCER,
        "consumer": SpanKind.CONSUMER,
    }.get(name, SpanKind.INTERNAL)


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context of a remote parent named by a W3C ``traceparent`` (None when not valid)."""
    if not traceparent:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = TraceContextTextMapPropagator().extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def recording() -> bool:
    """Whether tracing is on and a recording span is current."""
    if state.tracer is None:
        return False
    from opentelemetry import trace

    return trace.get_current_span().is_recording()


def client_kind() -> Any:
    """``SpanKind.CLIENT`` (for code that starts spans of its own)."""
    return _kind("client")


def span(
    name: str,
    *,
    kind: str = "internal",
    attributes: Attributes | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    child_only: bool = False,
) -> AbstractContextManager[Span | None]:
    """A span around a ``with`` block, current inside it (``None`` is yielded when off).

    ``kind``: server, client, producer, consumer or internal. ``traceparent``: the remote parent
    (else the current span). ``child_only``: no span unless a recording span is current. An
    exception leaving the block is recorded on the span and sets its status to error.
    """
    tracer = state.tracer
    if tracer is None or (child_only and not recording()):
        return _NULL
    return tracer.start_as_current_span(
        name,
        context=parent_context(traceparent, tracestate),
        kind=_kind(kind),
        attributes=attributes,
    )


class OpenSpan:
    """A started span, current until :meth:`close` (see :func:`open_span`)."""

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self._token = token
        self.traceparent = format_traceparent(span)

    def set(self, key: str, value: str | int | float | bool) -> None:
        """Set one attribute."""
        self.span.set_attribute(key, value)

    def close(self, *, name: str | None = None, error: str | None = None) -> None:
        """Rename (e.g. with the route found), mark as failed when ``error``, end, detach."""
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        if name is not None:
            self.span.update_name(name)
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.end()
        context.detach(self._token)  # type: ignore[arg-type]


def open_span(
    name: str,
    *,
    kind: str = "internal",
    attributes: Attributes | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> OpenSpan | None:
    """Start a span and make it current until :meth:`OpenSpan.close`; None when off."""
    tracer = state.tracer
    if tracer is None:
        return None
    from opentelemetry import context, trace

    started = tracer.start_span(
        name,
        context=parent_context(traceparent, tracestate),
        kind=_kind(kind),
        attributes=attributes,
    )
    token = context.attach(trace.set_span_in_context(started))
    return OpenSpan(started, token)


def format_traceparent(span: Span) -> str | None:
    """``span``'s W3C traceparent (None for an invalid span context)."""
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The traceparent of the current span; None when off or when no span is current."""
    if state.tracer is None:
        return None
    from opentelemetry import trace

    return format_traceparent(trace.get_current_span())


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span in hex; None when off or no span is current."""
    if state.tracer is None:
        return None
    from opentelemetry import trace

    sc = trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return f"{sc.trace_id:032x}", f"{sc.span_id:016x}"


def ids_of(traceparent: str | None) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a W3C traceparent string; None when it is not one."""
    if traceparent is None or len(traceparent) != 55 or traceparent[2] != "-":
        return None
    return traceparent[3:35], traceparent[36:52]


def record_error(error: BaseException, *, status: bool = True) -> None:
    """Record ``error`` on the current span (and mark it failed when ``status``); no-op off."""
    if state.tracer is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    current = trace.get_current_span()
    if not current.is_recording():
        return
    current.record_exception(error)
    if status:
        current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
