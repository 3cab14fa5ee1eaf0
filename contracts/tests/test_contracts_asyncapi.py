"""The AsyncAPI document generated from the registry."""

from __future__ import annotations

import pytest

from contracts import registry
from contracts.asyncapi import asyncapi_document

pytestmark = pytest.mark.unit


def test_every_consumer_group_has_a_receive_operation_per_stream_named_by_the_group() -> None:
    operations = asyncapi_document()["operations"]
    received = {k for k, op in operations.items() if op["action"] == "receive"}
    expected = {f"{g.name}.receive.{s}" for g in registry.GROUPS for s in g.streams}
    assert received == expected
    for group in registry.GROUPS:
        for stream in group.streams:
            op = operations[f"{group.name}.receive.{stream}"]
            assert op["x-parley-group"] == group.name
            assert op["channel"] == {"$ref": f"#/channels/{stream}"}


def test_every_stream_and_channel_family_is_a_channel_sent_by_its_owner() -> None:
    document = asyncapi_document()
    assert set(document["channels"]) == {s.name for s in registry.STREAMS} | {
        c.family for c in registry.CHANNELS
    }
    for spec in registry.STREAMS:
        assert document["operations"][f"{spec.owner}.send.{spec.name}"]["action"] == "send"
