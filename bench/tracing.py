"""Tracing's span sites in one process: what each costs off, and on.

    uv run python bench/tracing.py

No Redis needed. Three cases, each the median of ``ROUNDS`` timed loops, in microseconds per call:

- ``bare``: the work a span site wraps reduced to nothing (an empty ``with nullcontext()``), the
  baseline the ratio is taken against;
- ``off``: the same block as the bus, the cache and the SQL listener write it, tracing off (the
  ``state.tracer is None`` check, then the bare work), plus ``current_traceparent()``, which
  every envelope asks;
- ``on``: a span made, made current and ended, exported by the SDK's batch processor to an
  exporter that drops the batches (the OTLP encoding and the POST happen on the processor's
  thread, off the request path; ``otlp_encode_us`` is that work per span, measured apart).

A post crosses some tens of span sites (bus sends and handlings, cache and SQL round trips, the
request, the deliveries): that many times ``off_ns`` is what tracing off adds to a post.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shared import tracing
from shared.tracing import state

ROUNDS = 7
LOOPS = 20_000
ATTRIBUTES = {
    "messaging.system": "redis",
    "messaging.destination.name": "chat.events",
    "messaging.message.id": "0190a3b4-0000-7000-8000-000000000000",
    "parley.message.type": "chat.message_posted",
}


class Dropping(SpanExporter):
    """Takes every batch and throws it away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def timed(body: Callable[[], None]) -> float:
    """Microseconds per call: the median of ROUNDS loops of LOOPS calls."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(LOOPS):
            body()
        rounds.append((time.perf_counter() - started) / LOOPS * 1e6)
    return statistics.median(rounds)


def bare() -> None:
    with nullcontext():
        pass


def site() -> None:
    if state.tracer is None:
        with nullcontext():
            pass
    else:
        with tracing.span("send chat.message_posted", kind="producer", attributes=ATTRIBUTES):
            pass
    tracing.current_traceparent()


def main() -> None:
    figures: dict[str, float] = {"bare_us": timed(bare), "off_us": timed(site)}
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    state.provider, state.tracer = provider, provider.get_tracer("bench")
    figures["on_us"] = timed(site)
    finished: list[ReadableSpan] = []

    class Keeping(Dropping):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider.shutdown()
    keeping = TracerProvider()
    keeping.add_span_processor(BatchSpanProcessor(Keeping()))
    state.provider, state.tracer = keeping, keeping.get_tracer("bench")
    for _ in range(1000):
        site()
    keeping.force_flush()
    started = time.perf_counter()
    encoded = encode_spans(finished).SerializeToString()
    figures["otlp_encode_us"] = (time.perf_counter() - started) / len(finished) * 1e6
    figures["otlp_bytes_per_span"] = len(encoded) / len(finished)
    tracing.shutdown()
    figures["off_ns"] = (figures["off_us"] - figures["bare_us"]) * 1000
    rounded = {k: round(v, 3) for k, v in figures.items()}
    for name, value in rounded.items():
        print(f"  {name:<22} {value}")
    print(json.dumps(rounded))


if __name__ == "__main__":
    main()
