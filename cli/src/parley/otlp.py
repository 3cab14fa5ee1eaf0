"""A small OTLP/HTTP trace receiver: what a collector would get, kept in memory.

    with OtlpReceiver() as receiver:             # listens on 127.0.0.1, a free port
        env = receiver.env()                     # OTEL_* variables that point a service at it
        ...
        spans = receiver.wait_for(lambda spans: ..., timeout=10)

It answers ``POST /v1/traces`` (``application/x-protobuf``, gzip or not) with an empty
``ExportTraceServiceResponse`` and decodes each request into :class:`ReceivedSpan` rows
(``decode=False`` only counts requests and bytes: a sink for the benchmark). Anything else gets
404 or 400. Tests use it to see the spans the fleet exports; ``bench/e2e.py --tracing`` exports
to it.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span: ids in lowercase hex (``parent_span_id`` is "" for a root)."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    links: tuple[tuple[str, str], ...] = ()


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest``; raises ``DecodeError`` on garbage."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        service = str(resource.get("service.name", ""))
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    ReceivedSpan(
                        service=service,
                        name=s.name,
                        kind=_KINDS.get(s.kind, str(s.kind)),
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        attributes={kv.key: _value(kv.value) for kv in s.attributes},
                        status_code=s.status.code,
                        links=tuple((ln.trace_id.hex(), ln.span_id.hex()) for ln in s.links),
                    )
                )
    return out


class OtlpReceiver:
    """The receiver (see the module docstring); a context manager that starts and stops it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, decode: bool = True) -> None:
        self._decode = decode
        self._lock = threading.Lock()
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.bytes = 0
        self.rejected = 0
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL a service's ``OTEL_EXPORTER_OTLP_ENDPOINT`` names."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self, *, schedule_delay_ms: int = 200) -> dict[str, str]:
        """``OTEL_*`` variables that send a service's spans here, exported every
        ``schedule_delay_ms`` (the SDK's default is 5 s)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": str(schedule_delay_ms),
        }

    def snapshot(self) -> list[ReceivedSpan]:
        """The spans received so far."""
        with self._lock:
            return list(self.spans)

    def wait_for(
        self,
        done: Callable[[list[ReceivedSpan]], bool],
        *,
        timeout: float = 15.0,
    ) -> list[ReceivedSpan]:
        """The spans once ``done(spans)`` holds; raises TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.snapshot()
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(spans)} spans received, the condition never held")
            time.sleep(0.05)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/traces":
                    self._answer(404, b"")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                receiver._take(body, self)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # no line per export on stderr

        return Handler

    def _take(self, body: bytes, handler: Any) -> None:
        spans: list[ReceivedSpan] = []
        if self._decode:
            try:
                spans = decode(body)
            except Exception:
                with self._lock:
                    self.rejected += 1
                handler._answer(400, b"")
                return
        with self._lock:
            self.requests += 1
            self.bytes += len(body)
            self.spans.extend(spans)
        handler._answer(200, ExportTraceServiceResponse().SerializeToString())

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
