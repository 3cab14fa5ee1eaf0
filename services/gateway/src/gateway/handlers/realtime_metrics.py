"""The gateway's WebSocket metrics.

* ``parley_gateway_ws_connections``: authenticated sockets open now (read at scrape time);
* ``parley_gateway_ws_frames_sent_total{type}`` / ``parley_gateway_ws_frames_dropped_total{type}``:
  server frames written to sockets, and frames that never were (typing and presence dropped under
  backpressure; the essential frame that found a full queue and closed the socket as too slow);
* ``parley_gateway_ws_closes_total{code, by}``: closes by code, ``by`` the server or the client;
* ``parley_gateway_ws_delivery_seconds``: send-to-deliver latency, from a message's ``created_at``
  (chat's clock, set when it stored the message) to its live ``message.posted`` frame leaving this
  gateway (frames recovered from history are not counted: their age is the client's absence).

Frame types are the protocol's (docs/websocket.md), a closed set: labelled children are cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS: Final = Gauge(
    "parley_gateway_ws_connections", "Authenticated WebSocket connections open on this gateway."
)
FRAMES_SENT: Final = Counter(
    "parley_gateway_ws_frames_sent_total", "Server frames written to WebSockets, by type.", ["type"]
)
FRAMES_DROPPED: Final = Counter(
    "parley_gateway_ws_frames_dropped_total",
    "Server frames never written: dropped under backpressure or refused by a full queue, by type.",
    ["type"],
)
CLOSES: Final = Counter(
    "parley_gateway_ws_closes_total",
    "WebSocket closes, by close code and by whom (server, client).",
    ["code", "by"],
)
# Loopback delivery takes a few milliseconds; a slow consumer or a failover takes seconds.
DELIVERY: Final = Histogram(
    "parley_gateway_ws_delivery_seconds",
    "From a message's creation (created_at) to its live frame leaving the gateway.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_sent: dict[str, Counter] = {}
_dropped: dict[str, Counter] = {}


def count_sent(kind: str, born: float) -> None:
    """One frame of type ``kind`` written; ``born`` (unix time) > 0 is a live message's creation."""
    child = _sent.get(kind)
    if child is None:
        child = _sent[kind] = FRAMES_SENT.labels(kind)
    child.inc()
    if born:
        DELIVERY.observe(max(0.0, time.time() - born))


def count_dropped(kind: str) -> None:
    """One frame of type ``kind`` that will never be written."""
    child = _dropped.get(kind)
    if child is None:
        child = _dropped[kind] = FRAMES_DROPPED.labels(kind)
    child.inc()


def count_close(code: int, *, by: str) -> None:
    """One socket closed with ``code`` by ``server`` or ``client``."""
    CLOSES.labels(str(code), by).inc()


def track_connections(count: Callable[[], int]) -> None:
    """Read the connections gauge from ``count`` at scrape time (no cost per connection)."""
    CONNECTIONS.set_function(count)
