"""Parsing and validating client WebSocket frames."""

from __future__ import annotations

import pytest

from gateway.domain.frames import (
    MAX_FRAME_BYTES,
    AuthFrame,
    FrameError,
    PingFrame,
    ReadFrame,
    ResumeFrame,
    TypingFrame,
    ViewFrame,
    parse_client_frame,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "auth", "token": "t"}', AuthFrame("t")),
        ('{"type": "auth", "token": "t", "device_id": "phone"}', AuthFrame("t", "phone")),
        (
            '{"type": "resume", "conversations": {"c1": 4, "c2": 0}}',
            ResumeFrame({"c1": 4, "c2": 0}),
        ),
        ('{"type": "typing", "conversation_id": "c1"}', TypingFrame("c1", True)),
        ('{"type": "typing", "conversation_id": "c1", "typing": false}', TypingFrame("c1", False)),
        ('{"type": "read", "conversation_id": "c1", "seq": 9}', ReadFrame("c1", 9)),
        ('{"type": "view", "conversation_id": "c1"}', ViewFrame("c1")),
        ('{"type": "view", "conversation_id": null}', ViewFrame(None)),
        ('{"type": "view"}', ViewFrame(None)),
        ('{"type": "ping"}', PingFrame()),
        ('{"type": "ping", "id": "x"}', PingFrame("x")),
    ],
)
def test_valid_frames_parse_to_their_kind(text: str, expected: object) -> None:
    assert parse_client_frame(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("nope", "malformed_frame"),
        ("[1]", "malformed_frame"),
        ('"ping"', "malformed_frame"),
        ('{"kind": "ping"}', "malformed_frame"),
        ('{"type": 3}', "malformed_frame"),
        ('{"type": "dance"}', "unknown_frame_type"),
        ('{"type": "read", "conversation_id": "c1"}', "invalid"),
        ('{"type": "read", "conversation_id": "c1", "seq": -1}', "invalid"),
        ('{"type": "read", "conversation_id": "c1", "seq": true}', "invalid"),
        ('{"type": "read", "conversation_id": "c1", "seq": 1.5}', "invalid"),
        ('{"type": "read", "conversation_id": "bad id!", "seq": 1}', "invalid"),
        ('{"type": "typing"}', "invalid"),
        ('{"type": "typing", "conversation_id": "c1", "typing": "yes"}', "invalid"),
        ('{"type": "view", "conversation_id": 7}', "invalid"),
        ('{"type": "view", "conversation_id": ""}', "invalid"),
        ('{"type": "resume", "conversations": [1]}', "invalid"),
        ('{"type": "resume", "conversations": {"c1": "4"}}', "invalid"),
        ('{"type": "auth", "token": ""}', "invalid"),
        ('{"type": "ping", "id": 5}', "invalid"),
    ],
)
def test_bad_frames_are_refused_with_a_stable_code(text: str, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_client_frame(text)
    assert caught.value.code == code
    assert caught.value.message


def test_an_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(FrameError) as caught:
        parse_client_frame('{"type": "ping", "id": "' + "x" * MAX_FRAME_BYTES + '"}')
    assert caught.value.code == "frame_too_large"


def test_a_resume_naming_too_many_conversations_is_refused() -> None:
    convs = ", ".join(f'"c{i}": 1' for i in range(1001))
    with pytest.raises(FrameError):
        parse_client_frame(f'{{"type": "resume", "conversations": {{{convs}}}}}')
