"""Key grammar, hash tags and the same-slot guard."""

from __future__ import annotations

import socket

import pytest
from redis.asyncio import RedisCluster

from shared.keys import (
    CrossSlotError,
    KeyGrammarError,
    KeySpace,
    SlotCheckedScript,
    same_slot,
    slot_of,
)

pytestmark = pytest.mark.unit


def test_keys_follow_the_grammar_with_the_tag_in_braces() -> None:
    ks = KeySpace("chat")
    assert ks.key("messages", tag="conv:42") == "chat:messages:{conv:42}"
    assert (
        ks.key("messages", tag="conv:42", rest=["recent", "v2"])
        == "chat:messages:{conv:42}:recent:v2"
    )
    assert ks.pattern() == "chat:*"


@pytest.mark.parametrize("prefix", ["", "Chat", "ch{at}", "chat:x", "1chat", "ch at"])
def test_a_service_prefix_with_braces_or_separators_is_refused(prefix: str) -> None:
    with pytest.raises(KeyGrammarError):
        KeySpace(prefix)


@pytest.mark.parametrize(
    ("entity", "tag", "rest"),
    [
        ("", "t", ()),
        ("a:b", "t", ()),
        ("e", "", ()),
        ("e", "t}", ()),
        ("e", "t", ("x{y",)),
        ("e", "t", ("",)),
    ],
)
def test_malformed_key_parts_are_refused(entity: str, tag: str, rest: tuple[str, ...]) -> None:
    with pytest.raises(KeyGrammarError):
        KeySpace("chat").key(entity, tag=tag, rest=rest)


def test_keys_with_the_same_tag_share_a_slot_and_others_need_not() -> None:
    ks = KeySpace("chat")
    a, b = ks.key("messages", tag="conv:1"), ks.key("members", tag="conv:1", rest="all")
    assert same_slot(a, b) == slot_of(a) == slot_of("{conv:1}")
    spread = {slot_of(ks.key("messages", tag=f"conv:{i}")) for i in range(50)}
    assert len(spread) > 40  # different conversations spread over the cluster
    with pytest.raises(CrossSlotError):
        same_slot(ks.key("messages", tag="conv:1"), ks.key("messages", tag="conv:2"))


async def test_a_script_across_slots_is_refused_before_it_reaches_redis() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()[1]
    # A client of a server that does not exist: any attempt to send would fail to connect.
    client = RedisCluster(host="127.0.0.1", port=nowhere)
    script = SlotCheckedScript(client, "return 1")
    ks = KeySpace("test")
    with pytest.raises(CrossSlotError):
        await script(keys=[ks.key("a", tag="x"), ks.key("b", tag="y")])
