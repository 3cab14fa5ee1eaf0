"""What travels on a real-time channel: one :class:`Frame` per message, of any registered type.

A channel such as ``rt:{user:<id>}`` carries several message types (presence, notifications, ...),
so its payload cannot be one struct. A frame holds the envelope (which names the type and version)
and the payload still encoded; a reader decodes the payload with the class the registry declares
for that type. Publishers and subscribers on real-time channels use frames only::

    await pubsub.publish(channel, realtime.frame(msg, producer="chat"), droppable=...)
    async with pubsub.subscribe(channel, realtime.Frame) as sub:
        async for f in sub:
            envelope, message = realtime.open_frame(f)
"""

from __future__ import annotations

import msgspec

from contracts.base import Envelope, Message
from contracts.codec import decode, encode
from contracts.registry import message_class


class Frame(msgspec.Struct, array_like=True, frozen=True):
    """An envelope and its payload, still MessagePack-encoded."""

    envelope: Envelope
    payload: msgspec.Raw


def frame(message: Message, *, producer: str, caused_by: Envelope | None = None) -> Frame:
    """A frame for ``message`` with a new envelope (inheriting correlation from ``caused_by``)."""
    envelope = Envelope.for_message(message, producer=producer, caused_by=caused_by)
    return Frame(envelope, msgspec.Raw(encode(message)))


def frame_with(envelope: Envelope, message: Message) -> Frame:
    """A frame for ``message`` under an envelope the caller already has (e.g. a stream event's)."""
    return Frame(envelope, msgspec.Raw(encode(message)))


def open_frame(item: Frame) -> tuple[Envelope, Message]:
    """The envelope and the decoded message; raises UnknownMessageError or DecodeError."""
    cls = message_class(item.envelope.type, item.envelope.version)
    return item.envelope, decode(cls, item.payload)
