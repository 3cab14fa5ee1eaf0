"""Real-time frames carry any registered message and open back into the same typed message."""

from __future__ import annotations

import msgspec
import pytest

from contracts import registry
from contracts.base import ChannelMessage, DecodeError, Envelope, UnknownMessageError
from contracts.codec import decode, encode
from contracts.realtime import Frame, frame, frame_with, open_frame

pytestmark = pytest.mark.unit


def _a_channel_message() -> ChannelMessage:
    for cls in registry.MESSAGES:
        if issubclass(cls, ChannelMessage):
            try:
                return cls(**_sample_fields(cls))
            except (TypeError, msgspec.ValidationError):
                continue
    raise AssertionError("the registry declares no channel message that can be built")


def _sample_fields(cls: type) -> dict[str, object]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    samples = {
        msgspec.inspect.StrType: "x1",
        msgspec.inspect.IntType: 1,
        msgspec.inspect.BoolType: True,
    }
    return {
        f.name: samples[type(f.type)] for f in info.fields if f.required and type(f.type) in samples
    }


def test_a_frame_survives_the_wire_and_opens_into_the_same_message() -> None:
    message = _a_channel_message()
    wire = encode(frame(message, producer="test"))
    envelope, opened = open_frame(decode(Frame, wire))
    assert opened == message
    assert envelope.type == type(message).TYPE
    assert envelope.producer == "test"


def test_a_frame_keeps_the_envelope_it_is_given() -> None:
    message = _a_channel_message()
    envelope = Envelope.for_message(message, producer="test")
    opened_envelope, _ = open_frame(decode(Frame, encode(frame_with(envelope, message))))
    assert opened_envelope == envelope


def test_an_unknown_type_is_refused() -> None:
    message = _a_channel_message()
    envelope = msgspec.structs.replace(
        Envelope.for_message(message, producer="test"), type="nobody.nothing"
    )
    with pytest.raises(UnknownMessageError):
        open_frame(Frame(envelope, msgspec.Raw(encode(message))))


def test_a_payload_of_the_wrong_shape_is_a_decode_error() -> None:
    message = _a_channel_message()
    envelope = Envelope.for_message(message, producer="test")
    with pytest.raises(DecodeError):
        open_frame(Frame(envelope, msgspec.Raw(encode([1, 2, 3]))))
