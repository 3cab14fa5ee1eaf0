"""Parley's contracts: typed messages, the stream/channel registry, the wire codec.

Start with :mod:`contracts.base` (envelope, message kinds, replies, error codes),
:mod:`contracts.codec` (MessagePack/JSON, strict decoding) and :mod:`contracts.registry`
(streams, groups, channels, message lookup). Per-service messages live in ``contracts.<service>``.
"""

from contracts.base import (
    ChannelMessage,
    Command,
    ContractError,
    DecodeError,
    Empty,
    Envelope,
    ErrorCode,
    ErrorInfo,
    Event,
    Message,
    Reply,
    UnknownMessageError,
    new_message_id,
)

__all__ = [
    "ChannelMessage",
    "Command",
    "ContractError",
    "DecodeError",
    "Empty",
    "Envelope",
    "ErrorCode",
    "ErrorInfo",
    "Event",
    "Message",
    "Reply",
    "UnknownMessageError",
    "new_message_id",
]
