"""The attributes of the bus's spans (OpenTelemetry messaging conventions, plus Parley's ids).

Built only while tracing is on (:mod:`shared.tracing`); the span sites are in the publisher
(``send <type>``, producer), the handling runner (``process <type>``, consumer) and the reply
sender (``PUBLISH``, client).
"""

from __future__ import annotations

from contracts.base import Envelope
from shared.tracing.spans import Attributes

SYSTEM = "redis"


def _common(stream: str, env: Envelope) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": stream,
        "messaging.message.id": env.id,
        "parley.message.type": env.type,
        "parley.message.version": env.version,
        "parley.producer": env.producer,
    }
    if env.correlation_id:
        out["messaging.message.conversation_id"] = env.correlation_id
    if env.causation_id:
        out["parley.causation_id"] = env.causation_id
    return out


def producer_attributes(stream: str, env: Envelope) -> Attributes:
    """A ``send`` span's: the stream, the message's ids and type."""
    out = _common(stream, env)
    out["messaging.operation.type"] = "send"
    out["messaging.operation.name"] = "XADD"
    return out


def consumer_attributes(
    stream: str, env: Envelope, *, group: str, consumer: str, partition: int, entry_id: str
) -> Attributes:
    """A ``process`` span's: the stream and partition, the group, the entry and the message."""
    out = _common(stream, env)
    out["messaging.operation.type"] = "process"
    out["messaging.consumer.group.name"] = group
    out["messaging.client.id"] = consumer
    out["messaging.destination.partition.id"] = str(partition)
    out["parley.stream.entry_id"] = entry_id
    return out
