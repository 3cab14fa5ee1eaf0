"""JSON Schema documents of every registered message version, and of the registry itself.

One document per message version, named ``<type>.v<major>`` (a command's reply is
``<type>.reply.v<major>``). Each is a self-contained JSON Schema (2020-12) of the payload with
``$defs``, plus an ``x-parley`` block naming its kind, stream or channel and partition key, which
the check also compares (moving a message to another stream or key is breaking).
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts import registry
from contracts.base import ChannelMessage, Command, Envelope, Event, Message

__all__ = ["ENVELOPE_STEM", "REGISTRY_STEM", "message_schemas", "registry_document", "stem"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_STEM = "envelope.v1"
REGISTRY_STEM = "registry"


def stem(type_name: str, version: int) -> str:
    """The file stem of a message version: ``<type>.v<major>``."""
    return f"{type_name}.v{version}"


def _document(target: Any, meta: dict[str, Any], title: str) -> dict[str, Any]:
    schema = msgspec.json.schema(target)
    return {"$schema": JSON_SCHEMA_DIALECT, "title": title, "x-parley": meta, **schema}


def _meta(cls: type[Message]) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": cls.TYPE, "version": cls.VERSION, "kind": cls.KIND}
    if issubclass(cls, (Event, Command)):
        meta["stream"] = cls.STREAM
    if issubclass(cls, ChannelMessage):
        meta["channel"] = cls.CHANNEL
    meta["key"] = cls.KEY
    return meta


def message_schemas() -> dict[str, dict[str, Any]]:
    """Stem -> schema document, for every registered message, every command's reply and the
    envelope, in a deterministic order."""
    docs: dict[str, dict[str, Any]] = {}
    envelope_meta = {"type": "envelope", "version": 1, "kind": "envelope", "key": None}
    docs[ENVELOPE_STEM] = _document(Envelope, envelope_meta, "envelope v1")
    for cls in registry.MESSAGES:
        name = stem(cls.TYPE, cls.VERSION)
        docs[name] = _document(cls, _meta(cls), f"{cls.TYPE} v{cls.VERSION}")
        if issubclass(cls, Command):
            reply_meta = {
                "type": cls.reply_type_name(),
                "version": cls.VERSION,
                "kind": "reply",
                "key": None,
                "channel": "reply",
            }
            reply_name = stem(cls.reply_type_name(), cls.VERSION)
            docs[reply_name] = _document(cls.reply_type(), reply_meta, f"{reply_name} reply")
    return dict(sorted(docs.items()))


def registry_document() -> dict[str, Any]:
    """The streams (with Redis keys), consumer groups, channel families and message index."""
    streams = {
        s.name: {
            "owner": s.owner,
            "partitions": s.partitions,
            "max_len": s.max_len,
            "max_age_s": s.max_age_s,
            "key_template": f"{s.owner}:stream:{{{s.name}.<n>}}",
            "dead_letter_key": s.dead_letter_key(),
            "partitioner": "crc32(utf-8 key) mod partitions",
            "senders": list(s.senders),
        }
        for s in registry.STREAMS
    }
    groups = {
        g.name: {"streams": list(g.streams), "per_instance": g.per_instance}
        for g in registry.GROUPS
    }
    channels = {
        c.family: {
            "template": c.template,
            "publishers": list(c.publishers),
            "subscribers": list(c.subscribers),
            "sharded": c.sharded,
            "payloads": list(c.payloads),
            "per_service": c.per_service,
        }
        for c in registry.CHANNELS
    }
    messages = {stem(c.TYPE, c.VERSION): _meta(c) for c in registry.MESSAGES}
    return {"streams": streams, "groups": groups, "channels": channels, "messages": messages}
