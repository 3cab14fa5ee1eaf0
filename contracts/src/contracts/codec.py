"""Encoding and strict decoding of envelopes and payloads (MessagePack on the wire, JSON for tools).

Decoding is strict about types (a string where an integer is declared, a value outside its
constraints, a missing required field all raise :class:`~contracts.base.DecodeError`) and lenient
about unknown fields, which are ignored so that a producer may add optional fields before every
consumer is upgraded.

Two framings are offered; the bus picks one per transport:

* stream entries: two fields, ``encode_envelope(env)`` and ``encode(payload)``, so the envelope
  is read without touching the payload;
* channels and reply channels (one opaque value): ``pack(env, payload)`` -> one MessagePack array
  ``[envelope, payload-bytes]``; ``unpack(data)`` returns the envelope and the still-encoded payload
  (``msgspec.Raw``) to decode later with the class the registry names.

Encoders and decoders are built once per type and cached, since building them is the costly part.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from contracts.base import DecodeError, Envelope

__all__ = [
    "decode",
    "decode_envelope",
    "decode_json",
    "encode",
    "encode_envelope",
    "encode_json",
    "pack",
    "to_builtins",
    "unpack",
]

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder(order="deterministic")


class _Frame(msgspec.Struct, array_like=True, frozen=True):
    envelope: Envelope
    payload: msgspec.Raw


# A plain dict, not lru_cache: the set of types is small and fixed, and a dict keeps typing simple.
_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
_json_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(cls: Any) -> msgspec.msgpack.Decoder[Any]:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.msgpack.Decoder(cls)
    return decoder


def _json_decoder(cls: Any) -> msgspec.json.Decoder[Any]:
    decoder = _json_decoders.get(cls)
    if decoder is None:
        decoder = _json_decoders[cls] = msgspec.json.Decoder(cls)
    return decoder


_envelope_decoder = msgspec.msgpack.Decoder(Envelope)
_frame_decoder = msgspec.msgpack.Decoder(_Frame)


def _type_name(cls: Any) -> str:
    return str(getattr(cls, "TYPE", getattr(cls, "__name__", repr(cls))))


def encode(payload: msgspec.Struct) -> bytes:
    """MessagePack bytes of a payload (or any msgspec-encodable value)."""
    return _encoder.encode(payload)


def decode(cls: type[T], data: bytes | bytearray | memoryview | msgspec.Raw) -> T:
    """Decode MessagePack ``data`` as ``cls``; raises DecodeError on malformed or mistyped data.

    ``cls`` may be any type msgspec understands, e.g. ``SomeCommand.reply_type()``.
    """
    try:
        return _decoder(cls).decode(data)  # type: ignore[no-any-return]
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise DecodeError(str(e), type_name=_type_name(cls)) from e


def encode_envelope(envelope: Envelope) -> bytes:
    """MessagePack bytes of an envelope."""
    return _encoder.encode(envelope)


def decode_envelope(data: bytes | bytearray | memoryview) -> Envelope:
    """Decode an envelope; raises DecodeError."""
    try:
        return _envelope_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise DecodeError(str(e), type_name="envelope") from e


def pack(envelope: Envelope, payload: msgspec.Struct) -> bytes:
    """One MessagePack frame ``[envelope, payload]`` for transports that carry a single value."""
    return _encoder.encode(_Frame(envelope, msgspec.Raw(_encoder.encode(payload))))


def unpack(data: bytes | bytearray | memoryview) -> tuple[Envelope, msgspec.Raw]:
    """Split a frame made by :func:`pack`; the payload stays encoded until :func:`decode`."""
    try:
        frame = _frame_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise DecodeError(str(e), type_name="frame") from e
    return frame.envelope, frame.payload


def encode_json(value: Any) -> bytes:
    """Deterministic JSON (sorted keys) of an envelope, payload or any builtin value, for tools."""
    return _json_encoder.encode(value)


def decode_json(cls: type[T], data: bytes | str) -> T:
    """Decode JSON ``data`` as ``cls`` with the same strictness as the wire; raises DecodeError."""
    try:
        return _json_decoder(cls).decode(data)  # type: ignore[no-any-return]
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise DecodeError(str(e), type_name=_type_name(cls)) from e


def to_builtins(value: Any) -> Any:
    """Plain dicts/lists/strings of a Struct (datetimes as RFC 3339), e.g. for log lines."""
    return msgspec.to_builtins(value)
