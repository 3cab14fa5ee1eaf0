"""Every registered message round-trips through the wire codec; decoding is strict about types."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from contracts import codec, registry
from contracts.base import (
    Command,
    DecodeError,
    Envelope,
    ErrorCode,
    Message,
    Reply,
    new_message_id,
)
from contracts.chat import ChatMessage, MessagePosted, PostMessage

pytestmark = pytest.mark.unit

_STRINGS = ("id-1", "https://example.com/a.png", "abc", "22:30")


def sample(t: mi.Type) -> Any:
    """A valid value of an inspected type, every optional field filled (to exercise it)."""
    if isinstance(t, mi.StrType):
        for candidate in _STRINGS:
            fits = (t.min_length or 0) <= len(candidate) <= (t.max_length or 10**6)
            if fits and (t.pattern is None or re.search(t.pattern, candidate)):
                return candidate
        raise AssertionError(f"no sample string for {t}")
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.IntType):
        return max(t.ge or 0, (t.gt or 0) + 1 if t.gt is not None else 0, 1)
    if isinstance(t, mi.FloatType):
        return 1.5
    if isinstance(t, mi.DateTimeType):
        return datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    if isinstance(t, mi.ListType):
        return [sample(t.item_type)] if t.max_length != 0 else []
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.EnumType):
        return next(iter(t.cls))
    if isinstance(t, mi.UnionType):
        return sample(next(x for x in t.types if not isinstance(x, mi.NoneType)))
    if isinstance(t, mi.StructType):
        return t.cls(**{f.name: sample(f.type) for f in t.fields})
    raise AssertionError(f"no sample for {t}")


def sample_message(cls: type[Any]) -> Any:
    return sample(mi.type_info(cls))


MESSAGE_IDS = [f"{c.TYPE}.v{c.VERSION}" for c in registry.MESSAGES]


@pytest.mark.parametrize("cls", registry.MESSAGES, ids=MESSAGE_IDS)
def test_every_message_round_trips_through_msgpack_and_json(cls: type[Message]) -> None:
    message = sample_message(cls)
    assert codec.decode(cls, codec.encode(message)) == message
    assert codec.decode_json(cls, codec.encode_json(message)) == message


@pytest.mark.parametrize("cls", registry.MESSAGES, ids=MESSAGE_IDS)
def test_every_message_travels_in_a_frame_with_its_envelope(cls: type[Message]) -> None:
    message = sample_message(cls)
    envelope = Envelope.for_message(message, producer="test")
    got_envelope, raw = codec.unpack(codec.pack(envelope, message))
    assert got_envelope == envelope
    assert registry.message_class(got_envelope.type, got_envelope.version) is cls
    assert codec.decode(cls, raw) == message


@pytest.mark.parametrize(
    "cls", [c for c in registry.MESSAGES if issubclass(c, Command)], ids=lambda c: c.TYPE
)
def test_every_command_reply_round_trips_as_success_and_failure(cls: type[Command]) -> None:
    success = Reply.success(sample_message(cls.RESULT))
    assert codec.decode(cls.reply_type(), codec.encode(success)) == success
    failure = Reply.failure(ErrorCode.NOT_FOUND, "no such thing")
    decoded = codec.decode(cls.reply_type(), codec.encode(failure))
    assert decoded.ok is False
    assert decoded.error.code is ErrorCode.NOT_FOUND


def test_a_field_of_the_wrong_type_is_rejected_with_its_path() -> None:
    data = msgspec.msgpack.encode({"conversation_id": "c1", "message": {"seq": "one"}})
    with pytest.raises(DecodeError, match=r"chat.message_posted.*\$\.message"):
        codec.decode(MessagePosted, data)


def test_a_string_is_not_coerced_to_an_integer() -> None:
    data = msgspec.msgpack.encode({"user_id": "u", "conversation_id": "c", "seq": "5", "body": "x"})
    with pytest.raises(DecodeError, match="Expected `int`, got `str`"):
        codec.decode(registry.message_class("chat.edit_message", 1), data)


def test_a_value_outside_its_bounds_is_rejected() -> None:
    post = sample_message(PostMessage)
    too_long = msgspec.structs.replace(post, body="x" * 4001)
    with pytest.raises(DecodeError, match="length <= 4000"):
        codec.decode(PostMessage, codec.encode(too_long))


def test_a_missing_required_field_is_rejected() -> None:
    with pytest.raises(DecodeError, match="missing required field `client_msg_id`"):
        codec.decode(
            PostMessage,
            msgspec.msgpack.encode({"sender_id": "u", "conversation_id": "c", "body": "hi"}),
        )


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    post = sample_message(PostMessage)
    data = msgspec.msgpack.encode({**msgspec.to_builtins(post), "added_in_a_later_minor": 1})
    assert codec.decode(PostMessage, data) == post


def test_garbage_bytes_raise_a_decode_error_not_a_crash() -> None:
    for decode in (codec.decode_envelope, codec.unpack):
        with pytest.raises(DecodeError):
            decode(b"\xc1\xff not msgpack")


def test_a_naive_datetime_is_rejected_in_an_envelope() -> None:
    data = msgspec.msgpack.encode(
        {"id": "x", "type": "a.b", "version": 1, "occurred_at": "2025-01-01T00:00:00",
         "producer": "p"}
    )  # fmt: skip
    with pytest.raises(DecodeError, match="envelope"):
        codec.decode_envelope(data)


def test_a_caused_envelope_inherits_correlation_and_trace_and_points_at_its_cause() -> None:
    root = Envelope.for_message(
        sample_message(PostMessage), producer="gateway", traceparent="00-abc-def-01"
    )
    child = Envelope.for_message(sample_message(MessagePosted), producer="chat", caused_by=root)
    assert root.correlation_id == root.id
    assert child.correlation_id == root.id
    assert child.causation_id == root.id
    assert child.traceparent == "00-abc-def-01"
    assert child.deadline is None


def test_a_command_envelope_gets_a_deadline_and_its_reply_envelope_is_correlated() -> None:
    command = Envelope.for_message(sample_message(PostMessage), producer="gateway")
    assert command.deadline is not None
    assert not command.expired()
    assert command.expired(now=command.deadline + timedelta(milliseconds=1))
    reply = command.reply_envelope(producer="chat")
    assert (reply.type, reply.causation_id) == ("chat.post_message.reply", command.id)
    assert reply.correlation_id == command.correlation_id


def test_message_ids_are_uuid7_and_sort_by_creation_time() -> None:
    ids = [new_message_id() for _ in range(50)]
    uuid7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(uuid7.fullmatch(i) for i in ids)
    assert len(set(ids)) == 50
    first, later = ids[0], new_message_id()
    assert first[:13] <= later[:13]


def test_messages_are_frozen() -> None:
    message = sample_message(ChatMessage)
    with pytest.raises(AttributeError):
        message.body = "changed"
