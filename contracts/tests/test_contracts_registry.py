"""The registry: stream keys, the partition function, groups, channels and message lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import registry
from contracts.base import ContractError, Event, UnknownMessageError
from contracts.chat import ChatMessage, MessagePosted
from contracts.topology import StreamSpec, partition_of

pytestmark = pytest.mark.unit

# Pinned: if any of these move, every key's partition moved and per-key order would break for
# messages already in flight. Change the partitioner only with new streams.
PARTITIONS = [
    ("conv-1", 8, 4),
    ("conv-1", 16, 12),
    ("conv-2", 8, 6),
    ("user:42", 16, 6),
    ("01a21427-e842-76d2-b36d-4421cf2c480f", 8, 1),
    ("alice", 8, 7),
    ("", 8, 0),
    ("ü-ñ", 16, 0),
]


@pytest.mark.parametrize(("key", "partitions", "expected"), PARTITIONS)
def test_the_partition_of_a_key_never_changes(key: str, partitions: int, expected: int) -> None:
    assert partition_of(key, partitions) == expected


def test_a_stream_partition_key_follows_the_design_grammar() -> None:
    chat_events = registry.stream("chat.events")
    assert chat_events.key(3) == "chat:stream:{chat.events.3}"
    assert chat_events.key_for("conv-1") == "chat:stream:{chat.events.12}"
    assert len(set(chat_events.partition_keys())) == chat_events.partitions
    assert chat_events.dead_letter_key() == "chat:stream:{chat.events.dlq}"


def test_a_partition_outside_the_stream_is_refused() -> None:
    with pytest.raises(ContractError):
        registry.stream("chat.events").key(16)


def test_a_message_is_routed_to_its_partition_by_its_key_field() -> None:
    message = ChatMessage(
        id="m1", conversation_id="conv-1", seq=1, sender_id="u1", body="hi",
        client_msg_id="c1", created_at=datetime.now(UTC),
    )  # fmt: skip
    posted = MessagePosted(conversation_id="conv-1", message=message)
    spec = registry.stream_of(MessagePosted)
    assert posted.partition_value() == "conv-1"
    assert spec.key_for(posted.partition_value() or "") == "chat:stream:{chat.events.12}"


def test_every_stream_has_a_retention_and_is_owned_by_its_prefix() -> None:
    for spec in registry.STREAMS:
        assert spec.max_len or spec.max_age_s
        assert all(key.startswith(f"{spec.owner}:stream:{{") for key in spec.partition_keys())


def test_a_stream_without_retention_cannot_be_declared() -> None:
    with pytest.raises(ContractError, match="retention"):
        StreamSpec(name="chat.things", owner="chat", partitions=4)


def test_every_command_stream_is_read_by_its_owner_and_groups_read_declared_streams() -> None:
    for spec in registry.STREAMS:
        if spec.name.endswith(".commands"):
            assert [g.service for g in registry.groups_reading(spec.name)] == [spec.owner]
    assert {g.service for g in registry.groups_reading("chat.events")} == {
        "notification",
        "gateway",
    }
    assert registry.group("user").streams == ("user.commands", "auth.events", "gateway.events")


def test_a_per_instance_group_gives_each_instance_its_own_group_name() -> None:
    assert registry.group("gateway").instance_group("gw-1") == "gateway.gw-1"
    assert registry.group("chat").instance_group("chat-1") == "chat"


def test_channel_names_carry_their_hash_tag() -> None:
    assert registry.channel("rt.conv").key("c42") == "rt:{conv:c42}"
    assert registry.channel("rt.user").key("u7") == "rt:{user:u7}"
    assert registry.channel("reply").key("gateway-1") == "reply:{gateway-1}"
    with pytest.raises(ContractError):
        registry.channel("rt.conv").key("bad}id")


def test_reply_channels_belong_to_their_caller_and_have_a_glob_per_service() -> None:
    reply = registry.channel("reply")
    assert reply.service_key("gateway", "gw-1") == "reply:{gateway.gw-1}"
    assert reply.pattern("gateway") == "reply:{gateway.*}"
    assert reply.pattern() == "reply:{*}"
    assert registry.channel("rt.conv").pattern() == "rt:{conv:*}"
    with pytest.raises(ContractError):
        registry.channel("rt.conv").service_key("gateway", "1")
    with pytest.raises(ContractError):
        reply.pattern("Not a service")


def test_the_reply_family_follows_who_sends_commands_to_whom() -> None:
    senders = {s for spec in registry.STREAMS for s in spec.senders}
    answering = {spec.owner for spec in registry.STREAMS if spec.senders}
    reply = registry.channel("reply")
    assert set(reply.subscribers) == senders == {"gateway"}
    assert set(reply.publishers) == answering == {"auth", "user", "chat", "notification"}


def test_a_stream_cannot_name_its_owner_or_a_bad_name_as_a_sender() -> None:
    with pytest.raises(ContractError, match="senders"):
        StreamSpec(name="chat.things", owner="chat", partitions=1, max_len=1, senders=("chat",))
    with pytest.raises(ContractError, match="senders"):
        StreamSpec(name="chat.things", owner="chat", partitions=1, max_len=1, senders=("Gate way",))


def test_messages_are_looked_up_by_type_and_major_version() -> None:
    assert registry.message_class("chat.message_posted", 1) is MessagePosted
    with pytest.raises(UnknownMessageError):
        registry.message_class("chat.message_posted", 99)
    with pytest.raises(UnknownMessageError):
        registry.stream("nope.events")


def test_every_flow_of_the_design_has_its_messages() -> None:
    declared = {c.TYPE for c in registry.MESSAGES}
    assert {
        "auth.register", "auth.account_registered", "auth.session_revoked",
        "chat.post_message", "chat.message_posted", "chat.typing_changed",
        "user.presence_changed", "notification.notification_created",
        "gateway.connection_opened",
    } <= declared  # fmt: skip
    assert all(c.TYPE.startswith(c.STREAM.split(".")[0]) for c in registry.MESSAGES
               if issubclass(c, Event))  # fmt: skip


def test_a_private_stream_carries_its_owners_events_and_only_its_owner_reads_it() -> None:
    from contracts.notification import DeliveryRequested

    spec = registry.stream_of(DeliveryRequested)
    assert (spec.name, spec.private) == ("notification.delivery", True)
    assert [g.name for g in registry.groups_reading(spec.name)] == ["notification"]
    assert registry.message_class("notification.delivery_requested", 1) is DeliveryRequested
    with pytest.raises(ContractError, match="named like a public one"):
        StreamSpec(name="chat.events", owner="chat", partitions=4, max_len=10, private=True)
