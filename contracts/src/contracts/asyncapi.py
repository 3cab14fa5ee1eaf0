"""An AsyncAPI 3.0 document of the whole fleet, generated from the registry.

Written directly rather than through FastStream's generator (see docs/contracts.md): our logical
streams are P Redis streams whose names contain cluster hash tags (``{...}``), which collide with
AsyncAPI's ``{parameter}`` syntax in channel addresses, and FastStream documents one address per
subscriber built from handler signatures, with its own header framing, not our envelope.

So every logical stream or channel family is one AsyncAPI channel with ``address: null`` (dynamic)
and its Redis key template under ``x-parley``; the envelope is each message's ``headers`` schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from contracts import registry
from contracts.base import Command, Envelope, Event, Message
from contracts.schema_docs import stem

__all__ = ["asyncapi_document"]

_REF = "#/components/schemas/{name}"


def _message(name: str, title: str, payload_ref: dict[str, Any], summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/msgpack",
        "headers": {"$ref": "#/components/schemas/Envelope"},
        "payload": payload_ref,
    }


def _summary(cls: type[Any]) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a plain dict, ready for deterministic JSON)."""
    classes: list[type[Message]] = list(registry.MESSAGES)
    commands = [c for c in classes if issubclass(c, Command)]
    targets: list[Any] = [Envelope, *classes, *(c.reply_type() for c in commands)]
    refs, schemas = msgspec.json.schema_components(targets, ref_template=_REF)
    payload_refs = dict(zip(classes, refs[1 : 1 + len(classes)], strict=True))
    reply_refs = dict(zip(commands, refs[1 + len(classes) :], strict=True))

    messages: dict[str, Any] = {}
    for cls in classes:
        messages[stem(cls.TYPE, cls.VERSION)] = _message(
            cls.TYPE, f"{cls.TYPE} v{cls.VERSION}", payload_refs[cls], _summary(cls)
        )
    for cls in commands:
        name = stem(cls.reply_type_name(), cls.VERSION)
        messages[name] = _message(cls.reply_type_name(), name, reply_refs[cls], "ok or error")

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in registry.STREAMS:
        members = [c for c in classes if issubclass(c, (Event, Command)) and spec.name == c.STREAM]
        channels[spec.name] = {
            "address": None,
            "description": (
                f"Redis Streams {spec.owner}:stream:{{{spec.name}.<n>}}, "
                f"n = 0..{spec.partitions - 1} = crc32(partition key) mod {spec.partitions}"
            ),
            "messages": {_name(c): {"$ref": f"#/components/messages/{_name(c)}"} for c in members},
            "x-parley": {
                "owner": spec.owner,
                "partitions": spec.partitions,
                "max_len": spec.max_len,
                "max_age_s": spec.max_age_s,
                "dead_letter_key": spec.dead_letter_key(),
            },
        }
        operations[f"{spec.owner}.send.{spec.name}"] = _operation("send", spec.name, members)
        for group in registry.groups_reading(spec.name):
            op = _operation("receive", spec.name, members)
            op["x-parley-group"] = group.name
            if spec.name.endswith(".commands"):
                op["reply"] = {"channel": {"$ref": "#/channels/reply"}}
            operations[f"{group.name}.receive.{spec.name}"] = op
    for family in registry.CHANNELS:
        names = [stem(c.TYPE, c.VERSION) for c in classes if c.TYPE in family.payloads]
        if family.family == "reply":
            names = [stem(c.reply_type_name(), c.VERSION) for c in commands]
        channels[family.family] = {
            "address": None,
            "description": f"Redis pub/sub {family.template}: {family.description}",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "x-parley": {
                "template": family.template,
                "sharded": family.sharded,
                "publishers": list(family.publishers),
                "subscribers": list(family.subscribers),
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley fleet",
            "version": "1.0.0",
            "description": "Streams, channels and messages of the Parley services (generated).",
        },
        "defaultContentType": "application/msgpack",
        "servers": {
            "local": {
                "host": "127.0.0.1:7001",
                "protocol": "redis",
                "description": "local Redis Cluster (3 masters + 3 replicas)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _operation(action: str, channel: str, members: Sequence[type[Message]]) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [
            {"$ref": f"#/channels/{channel}/messages/{stem(c.TYPE, c.VERSION)}"} for c in members
        ],
    }


def _name(cls: type[Message]) -> str:
    return stem(cls.TYPE, cls.VERSION)
