"""The gateway's RED metrics of HTTP requests, per route template (never the raw path).

``parley_gateway_http_requests_total{method, route, status}``,
``parley_gateway_http_request_duration_seconds{method, route}`` and
``parley_gateway_http_requests_in_flight``. ``route`` is the template the router matched
(``/api/v1/conversations/{conversation_id}/messages``), ``unmatched`` for a path no route serves,
so a scan of random paths adds no series.

:class:`RequestTracking` (``gateway.api.middleware``) already times every request and sees its
status; it calls :func:`observe` once per request, so the metrics add no wrapper of their own: the
cost is one dictionary lookup of cached children, one ``inc`` and one ``observe`` (about 3 µs
per request), and :data:`in_flight` moved up and down.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Scope

UNMATCHED: Final = "unmatched"

# From a cached read (a millisecond) to a command that waits out its timeout (seconds).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS: Final = Counter(
    "parley_gateway_http_requests_total",
    "HTTP requests answered by the gateway, by method, route template and status.",
    ["method", "route", "status"],
)
DURATION: Final = Histogram(
    "parley_gateway_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=_BUCKETS,
)
IN_FLIGHT: Final = Gauge(
    "parley_gateway_http_requests_in_flight", "HTTP requests being served now."
)
in_flight = 0
"""Requests being served now: a plain int the middleware moves (the event loop's thread only),
read by the gauge at scrape time; a gauge's own ``inc``/``dec`` take a lock twice per request."""
IN_FLIGHT.set_function(lambda: in_flight)

_counters: dict[tuple[str, str, int], Counter] = {}
_timers: dict[tuple[str, str], Histogram] = {}


def route_of(scope: Scope) -> str:
    """The template of the route that served the request, or ``unmatched``.

    FastAPI routes included through routers with prefixes (``/api/v1`` + ``/conversations``)
    leave the route *as declared* in ``scope["route"]``; the full template is in FastAPI's route
    context of the request, read first (tests/unit/test_metrics.py fails if that moves).
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def observe(scope: Scope, status: int, seconds: float) -> None:
    """Count one finished request and record its duration (children cached per label set)."""
    method = scope["method"]
    route = route_of(scope)
    key = (method, route, status)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = REQUESTS.labels(method, route, str(status))
    counter.inc()
    timer = _timers.get(key[:2])
    if timer is None:
        timer = _timers[key[:2]] = DURATION.labels(method, route)
    timer.observe(seconds)
