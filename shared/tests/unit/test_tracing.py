"""Tracing's switch (the OTEL_* variables), its span sites, and what log lines name."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text

from contracts.base import Envelope
from shared import tracing
from shared.bus import context
from shared.service.database import Database
from shared.service.logging import JsonFormatter, configure_logging

pytestmark = pytest.mark.unit

CLIENT_TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("unit", exporter=exporter)
    yield exporter
    tracing.shutdown()


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False),  # no endpoint named: nowhere to send
    ],
)
def test_the_otel_variables_switch_tracing_on_or_off(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


def test_an_exporter_or_protocol_the_fleet_lacks_is_a_clear_error() -> None:
    with pytest.raises(tracing.TracingConfigError, match="OTEL_TRACES_EXPORTER: zipkin"):
        tracing.wanted({"OTEL_TRACES_EXPORTER": "zipkin"})
    grpc = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(tracing.TracingConfigError, match="only http/protobuf"):
        tracing.configure("unit", environ=grpc)
    assert not tracing.on()


def test_off_every_span_site_is_a_no_op() -> None:
    assert not tracing.configure("unit", environ={})
    with tracing.span("anything", kind="server") as span:
        assert span is None
        assert tracing.current_traceparent() is None
        assert tracing.current_ids() is None
    assert tracing.open_span("request") is None
    tracing.record_error(RuntimeError("nothing records it"))


def test_a_span_continues_a_remote_traceparent_and_names_itself_in_one(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.span("process x", kind="consumer", traceparent=CLIENT_TP) as span:
        assert span is not None
        mine = tracing.current_traceparent()
        with tracing.span("cache get", kind="client", child_only=True):
            pass
    assert mine is not None and mine.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    child, parent = spans.get_finished_spans()
    assert parent.kind is SpanKind.CONSUMER
    assert parent.parent is not None and f"{parent.parent.span_id:016x}" == "b7ad6b7169203331"
    assert mine == f"00-{parent.context.trace_id:032x}-{parent.context.span_id:016x}-01"
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def test_child_only_spans_need_a_recording_parent(spans: InMemorySpanExporter) -> None:
    with tracing.span("cache get", child_only=True) as span:
        assert span is None
    with tracing.span("bad parent", traceparent="00-zz-nonsense-01"):
        pass  # an invalid traceparent starts a new trace instead
    (only,) = spans.get_finished_spans()
    assert only.name == "bad parent" and only.parent is None


def test_an_error_leaving_a_span_marks_it_failed(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="boom"), tracing.span("handler"):
        raise ValueError("boom")
    with tracing.span("retried"):
        tracing.record_error(TimeoutError("first attempt"), status=False)
    failed, retried = spans.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert retried.status.status_code is StatusCode.UNSET
    assert retried.events[0].name == "exception"


def _format(record_logger: logging.Logger, handler: logging.Handler) -> dict[str, str]:
    record = record_logger.makeRecord("t", logging.INFO, __file__, 1, "hello", (), None)
    for f in handler.filters:
        f.filter(record)  # type: ignore[union-attr]
    return dict(json.loads(JsonFormatter().format(record)))


@pytest.fixture
def handler() -> Iterator[logging.Handler]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    configure_logging("unit", fmt="json", filters=[context.MessageContextFilter()])
    yield root.handlers[0]
    root.handlers[:] = saved
    root.setLevel(level)


def test_log_lines_name_the_trace_and_span_of_the_message_when_tracing_is_off(
    handler: logging.Handler,
) -> None:
    env = Envelope(
        id="m1",
        type="t.x",
        version=1,
        occurred_at=datetime.now(UTC),
        producer="p",
        traceparent=CLIENT_TP,
    )
    logger = logging.getLogger("t")
    with context.handling(env):
        inside = _format(logger, handler)
    outside = _format(logger, handler)
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == "b7ad6b7169203331"
    assert inside["message_id"] == "m1" and inside["traceparent"] == CLIENT_TP
    assert outside["trace_id"] == "-" and outside["span_id"] == "-"


def test_log_lines_name_the_current_span_when_tracing_is_on(
    spans: InMemorySpanExporter, handler: logging.Handler
) -> None:
    logger = logging.getLogger("t")
    with tracing.span("work", traceparent=CLIENT_TP):
        line = _format(logger, handler)
    (work,) = spans.get_finished_spans()
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == f"{work.context.span_id:016x}"


async def test_sql_statements_are_spans_inside_a_span_and_only_there(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))  # no span: no parent
        with tracing.span("handler"):
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": 1})
    finally:
        await db.close()
    finished = spans.get_finished_spans()
    handler_span = next(s for s in finished if s.name == "handler")
    sql = [s for s in finished if s.name != "handler"]
    assert [s.name for s in sql] == ["INSERT"]
    assert sql[0].kind is SpanKind.CLIENT
    assert sql[0].parent is not None and sql[0].parent.span_id == handler_span.context.span_id
    assert sql[0].attributes is not None
    assert sql[0].attributes["db.system.name"] == "sqlite"
    assert sql[0].attributes["db.query.text"] == "INSERT INTO t (x) VALUES (?)"
