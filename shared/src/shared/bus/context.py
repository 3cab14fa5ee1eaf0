"""The message being handled, in a context variable: what handlers publish inherits from it.

While a handler runs, :func:`current` returns the envelope of its message. The publisher makes every
message it sends from there a consequence of it (same correlation id and trace context, causation id
= the handled message's id), and log records carry the ids through :class:`MessageContextFilter`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from contracts.base import Envelope
from shared.service import logging as service_logging

_current: contextvars.ContextVar[Envelope | None] = contextvars.ContextVar(
    "parley_bus_message", default=None
)


def current() -> Envelope | None:
    """The envelope of the message being handled in this task, if any."""
    return _current.get()


@contextmanager
def handling(envelope: Envelope) -> Iterator[None]:
    """Run a block as the handling of the message with ``envelope``."""
    token = _current.set(envelope)
    corr = service_logging.correlation_id.set(envelope.correlation_id or envelope.id)
    trace = service_logging.trace_context.set(envelope.traceparent)
    try:
        yield
    finally:
        service_logging.trace_context.reset(trace)
        service_logging.correlation_id.reset(corr)
        _current.reset(token)


class MessageContextFilter(logging.Filter):
    """Adds ``message_id``, ``causation_id``, ``correlation_id`` and ``traceparent`` to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        env = _current.get()
        record.message_id = env.id if env else "-"
        record.causation_id = (env.causation_id or "-") if env else "-"
        record.traceparent = (env.traceparent or "-") if env else "-"
        if env is not None and not getattr(record, "correlation_id", None):
            record.correlation_id = env.correlation_id or env.id
        return True
