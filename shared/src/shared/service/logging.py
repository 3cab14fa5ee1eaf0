"""Log records with the service name and the correlation id of the work in progress.

Human-readable lines by default; JSON lines when ``PARLEY_LOG_FORMAT=json``. The correlation id is
kept in a context variable, so every line logged while a request or message is handled carries it.
So are ``trace_id`` and ``span_id``: the current span's when tracing is on, else those of the
``traceparent`` of the request or message in progress (:data:`trace_context`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.tracing import current_ids, ids_of

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_correlation_id", default=None
)

trace_context: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_trace_context", default=None
)
"""The W3C traceparent of the request or message in progress (what log lines name when no span
is current)."""

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Run a block with ``value`` as the correlation id of everything it logs."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if not getattr(record, "correlation_id", None):
            record.correlation_id = correlation_id.get() or "-"
        ids = current_ids() or ids_of(trace_context.get())
        record.trace_id, record.span_id = ids if ids is not None else ("-", "-")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, correlation id, trace and
    span ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": getattr(record, "service", "-"),
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "-"),
            "trace_id": getattr(record, "trace_id", "-"),
            "span_id": getattr(record, "span_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class WebSocketHandshakeLines(logging.Filter):
    """uvicorn's lines for each WebSocket: the handshake (``<peer> - "WebSocket <path>?<query>"
    [accepted]``, or its status), then "connection open" and "connection closed".

    The query string is where a browser's client puts its access token (``/ws?token=...``), so it
    is cut from the path on every level; and the three lines go to DEBUG: at INFO they would be
    three log lines per socket, which the gateway's connection metrics already count.
    """

    _HANDSHAKE = '%s - "WebSocket %s"'
    _PER_SOCKET = frozenset({"connection open", "connection closed"})

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str):
            return True
        if msg.startswith(self._HANDSHAKE) and isinstance(record.args, tuple):
            args = list(record.args)
            if len(args) >= 2:
                args[1] = str(args[1]).split("?", 1)[0]
                record.args = tuple(args)
        elif msg not in self._PER_SOCKET:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


HUMAN_FORMAT = "%(asctime)s %(levelname)-7s %(service)s [%(correlation_id)s] %(name)s: %(message)s"


def configure_logging(
    service: str,
    *,
    fmt: str | None = None,
    level: str | None = None,
    filters: Sequence[logging.Filter] = (),
) -> None:
    """Send the root logger's records to stderr in the chosen format, tagged with ``service``.

    ``filters`` add fields to every record (the runner passes the bus's message context, so a
    line logged while a message is handled names its message, causation and trace context).
    """
    fmt = fmt or os.environ.get("PARLEY_LOG_FORMAT", "human")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    for extra in filters:
        handler.addFilter(extra)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PARLEY_LOG_LEVEL", "INFO").upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, WebSocketHandshakeLines) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(WebSocketHandshakeLines())
