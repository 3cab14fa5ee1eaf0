"""The layout of a stream entry, and decoding one into the message a handler receives.

An entry has the envelope and the payload as two MessagePack fields (``e`` and ``p``), so routing,
deduplication, deadlines and tracing read the envelope without decoding the payload. Two optional
fields mark re-runs made by the operator tools: ``g`` (only this group handles the entry; others
acknowledge and skip it) and ``r`` (a replay: the group runs it even if it handled that message id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from contracts import codec
from contracts.base import DecodeError, Envelope, Message

ENVELOPE: Final = b"e"
PAYLOAD: Final = b"p"
ONLY_GROUP: Final = b"g"
REPLAY: Final = b"r"

Fields = dict[bytes, bytes]


def redis_fields(fields: Fields) -> Any:
    """``fields`` typed as redis-py's XADD wants them (its stubs are invariant in the key type)."""
    return fields


def entry_fields(envelope: Envelope, payload: msgspec.Struct) -> Fields:
    """The fields of a new stream entry carrying ``payload``."""
    return {ENVELOPE: codec.encode_envelope(envelope), PAYLOAD: codec.encode(payload)}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry read from a partition, decoded: what a handler is called with."""

    entry_id: str
    partition: int
    envelope: Envelope
    message: Message
    replay: bool = False

    @property
    def key(self) -> str:
        """The partition-key value (the message id for messages without a key)."""
        return self.message.partition_value() or self.envelope.id


def decode_envelope(fields: Fields) -> Envelope:
    """The envelope of an entry; raises DecodeError on a foreign or corrupt entry."""
    raw = fields.get(ENVELOPE)
    if raw is None:
        raise DecodeError(f"entry has no envelope field; fields: {sorted(map(repr, fields))[:8]}")
    return codec.decode_envelope(raw)


def decode_payload(cls: type[Message], fields: Fields) -> Message:
    """The payload of an entry as ``cls``; raises DecodeError."""
    raw = fields.get(PAYLOAD)
    if raw is None:
        raise DecodeError("entry has no payload field", type_name=cls.TYPE)
    return codec.decode(cls, raw)


def as_text(value: bytes | str) -> str:
    """A Redis reply value as ``str`` (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


def to_json_obj(entry_id: str, fields: Fields, cls: type[Message] | None) -> dict[str, Any]:
    """An entry as a plain dict for tools: decoded where possible, raw (hex/utf-8) otherwise."""
    out: dict[str, Any] = {"id": entry_id}
    try:
        env = decode_envelope(fields)
        out["envelope"] = codec.to_builtins(env)
        if cls is not None:
            out["payload"] = codec.to_builtins(decode_payload(cls, fields))
        elif PAYLOAD in fields:
            out["payload"] = msgspec.msgpack.decode(fields[PAYLOAD])
    except (DecodeError, msgspec.DecodeError) as e:
        out["error"] = str(e)
    for name, value in fields.items():
        if name in (ENVELOPE, PAYLOAD):
            continue
        text = name.decode(errors="replace")
        try:
            out.setdefault("fields", {})[text] = value.decode()
        except UnicodeDecodeError:
            out.setdefault("fields", {})[text] = value.hex()
    return out
