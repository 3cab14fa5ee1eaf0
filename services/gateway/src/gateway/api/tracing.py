"""The server span of an HTTP request (tracing on only; see :mod:`shared.tracing`).

Named ``<METHOD> <route template>`` once routing has found the route (``<METHOD>`` alone for a
path no route matches), under the client's ``traceparent`` when it sends a valid one. Its
attributes follow OpenTelemetry's HTTP conventions; a 5xx answer marks it failed.
"""

from __future__ import annotations

from starlette.types import Scope

from shared import tracing


def request_span(scope: Scope, headers: dict[str, str]) -> tracing.OpenSpan | None:
    """The request's server span, current until :func:`end_request_span`; None when off."""
    if not tracing.on():
        return None
    method = scope["method"]
    attributes: dict[str, str | int | float | bool] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if agent := headers.get("user-agent"):
        attributes["user_agent.original"] = agent[:512]
    client = scope.get("client")
    if client:
        attributes["network.peer.address"] = str(client[0])
    return tracing.open_span(
        method,
        kind="server",
        attributes=attributes,
        traceparent=headers.get("traceparent"),
        tracestate=headers.get("tracestate"),
    )


def end_request_span(span: tracing.OpenSpan, scope: Scope, status: int) -> None:
    """Name the span after the route found, record the status, end it."""
    template = route_template(scope)
    span.set("http.response.status_code", status)
    name = None
    if template is not None:
        span.set("http.route", template)
        name = f"{scope['method']} {template}"
    span.close(name=name, error=str(status) if status >= 500 else None)


def route_template(scope: Scope) -> str | None:
    """The template of the route that served the request (``/api/v1/users/{user_id}``).

    FastAPI keeps an included router's route as declared (``/users/{user_id}``, without the
    ``/api/v1`` prefix) in ``scope["route"]``; the full template is in its record of the
    route it chose (``scope["fastapi"]["effective_route_context"]``), read when present.
    """
    chosen = scope.get("fastapi", {}).get("effective_route_context")
    full = getattr(chosen, "path_format", None)
    if isinstance(full, str) and full:
        return full
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None
