"""Client spans for SQL statements, from SQLAlchemy's cursor events.

Listeners are attached only while tracing is on, and a statement gets a span only inside a
recording span (a request's, a handler's): the outbox relay's polls make no traces of their own.
The statement's text is recorded as SQLAlchemy sends it, with bind placeholders, never values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared.tracing import spans, state

_KEY = "parley_span"
_MAX_TEXT = 2000


def instrument(engine: Engine, *, system: str, namespace: str | None = None) -> bool:
    """Trace ``engine``'s statements (``system``: sqlite, postgresql); False when tracing is off."""
    if state.tracer is None:
        return False
    base: dict[str, str] = {"db.system.name": system}
    if namespace:
        base["db.namespace"] = namespace

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or not spans.recording():
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes: dict[str, str | int] = {
            **base,
            "db.operation.name": operation,
            "db.query.text": statement[:_MAX_TEXT],
        }
        if many and params:
            attributes["db.operation.batch.size"] = len(params)
        tracer = state.tracer
        if tracer is None:
            return
        started = tracer.start_span(operation, kind=spans.client_kind(), attributes=attributes)
        setattr(context, _KEY, started)

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        started = getattr(context, _KEY, None)
        if started is not None:
            rows = getattr(cursor, "rowcount", -1)
            if isinstance(rows, int) and rows >= 0:
                started.set_attribute("db.response.returned_rows", rows)
            started.end()
            setattr(context, _KEY, None)

    def failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        started = getattr(context, _KEY, None) if context is not None else None
        if started is not None:
            from opentelemetry.trace import Status, StatusCode

            error = exception_context.original_exception
            started.record_exception(error)
            started.set_status(Status(StatusCode.ERROR, type(error).__name__))
            started.end()
            setattr(context, _KEY, None)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)
    return True
