"""Client frames of the WebSocket protocol: parsing and validation (pure, no I/O).

Every frame is a JSON object with a ``type``. :func:`parse_client_frame` turns one text frame
into one of :data:`ClientFrame` or raises :class:`FrameError` with a stable code, so the
connection can answer ``{"type": "error", ...}`` and stay up. docs/websocket.md is the protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gateway.domain.bounds import MAX_SEQ
from gateway.domain.errors import INVALID, GatewayError

MAX_FRAME_BYTES: Final = 64 * 1024
"""A client frame larger than this is refused (the biggest legitimate one is a long resume)."""
MAX_RESUME_CONVERSATIONS: Final = 1000
"""Conversations one ``resume`` may name."""
MAX_TOKEN_CHARS: Final = 8192
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

MALFORMED: Final = "malformed_frame"
UNKNOWN_TYPE: Final = "unknown_frame_type"
TOO_LARGE: Final = "frame_too_large"


class FrameError(GatewayError):
    """A client frame that cannot be accepted; ``code`` is sent back in the error frame."""


@dataclass(frozen=True, slots=True)
class AuthFrame:
    """``{"type": "auth", "token": "...", "device_id"?: "..."}``: only as the first frame."""

    token: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeFrame:
    """``{"type": "resume", "conversations": {"<id>": <last seen seq>}}``."""

    conversations: dict[str, int]


@dataclass(frozen=True, slots=True)
class TypingFrame:
    """``{"type": "typing", "conversation_id": "...", "typing"?: true}``."""

    conversation_id: str
    typing: bool = True


@dataclass(frozen=True, slots=True)
class ReadFrame:
    """``{"type": "read", "conversation_id": "...", "seq": N}``."""

    conversation_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class ViewFrame:
    """``{"type": "view", "conversation_id": "..." | null}``: the conversation on the screen.

    ``null`` (or no ``conversation_id``) says none is.
    """

    conversation_id: str | None


@dataclass(frozen=True, slots=True)
class PingFrame:
    """``{"type": "ping", "id"?: "..."}``; answered ``{"type": "pong", "id"?: ...}``."""

    id: str | None = None


ClientFrame = AuthFrame | ResumeFrame | TypingFrame | ReadFrame | ViewFrame | PingFrame


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """The frame ``text`` encodes, or :class:`FrameError` saying what is wrong with it."""
    if len(text) > MAX_FRAME_BYTES:
        raise FrameError(TOO_LARGE, f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise FrameError(MALFORMED, "a frame must be a JSON object") from e
    if not isinstance(data, dict):
        raise FrameError(MALFORMED, "a frame must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise FrameError(MALFORMED, "a frame needs a string 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise FrameError(UNKNOWN_TYPE, f"unknown frame type {kind[:64]!r}")
    return parser(data)


def _id(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _ID.match(value):
        raise FrameError(INVALID, f"'{name}' must be an id (1-64 of A-Z a-z 0-9 _ . : -)")
    return value


def _seq(value: Any, name: str) -> int:
    # bool is an int in Python; a JSON true is not a sequence number.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise FrameError(INVALID, f"'{name}' must be a non-negative integer")
    return value


def _auth(data: dict[str, Any]) -> AuthFrame:
    token = data.get("token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise FrameError(INVALID, "'token' must be a non-empty string")
    device = data.get("device_id")
    if device is not None and (not isinstance(device, str) or not 1 <= len(device) <= 128):
        raise FrameError(INVALID, "'device_id' must be a string of 1-128 characters")
    return AuthFrame(token, device)


def _resume(data: dict[str, Any]) -> ResumeFrame:
    convs = data.get("conversations")
    if not isinstance(convs, dict):
        raise FrameError(INVALID, "'conversations' must be an object of id -> last seen seq")
    if len(convs) > MAX_RESUME_CONVERSATIONS:
        raise FrameError(INVALID, f"at most {MAX_RESUME_CONVERSATIONS} conversations per resume")
    checked: dict[str, int] = {}
    for conv, seq in convs.items():
        if not _ID.match(conv):
            raise FrameError(INVALID, "conversation ids must be ids")
        checked[conv] = _seq(seq, f"conversations.{conv}")
    return ResumeFrame(checked)


def _typing(data: dict[str, Any]) -> TypingFrame:
    conv = _id(data, "conversation_id")
    typing = data.get("typing", True)
    if not isinstance(typing, bool):
        raise FrameError(INVALID, "'typing' must be a boolean")
    assert conv is not None
    return TypingFrame(conv, typing)


def _read(data: dict[str, Any]) -> ReadFrame:
    conv = _id(data, "conversation_id")
    assert conv is not None
    return ReadFrame(conv, _seq(data.get("seq"), "seq"))


def _view(data: dict[str, Any]) -> ViewFrame:
    return ViewFrame(_id(data, "conversation_id", required=False))


def _ping(data: dict[str, Any]) -> PingFrame:
    ping_id = data.get("id")
    if ping_id is not None and (not isinstance(ping_id, str) or len(ping_id) > 64):
        raise FrameError(INVALID, "'id' must be a string of at most 64 characters")
    return PingFrame(ping_id)


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientFrame]] = {
    "auth": _auth,
    "resume": _resume,
    "typing": _typing,
    "read": _read,
    "view": _view,
    "ping": _ping,
}


def error_frame(code: str, message: str) -> dict[str, Any]:
    """The frame telling the client that something it sent was refused."""
    return {"type": "error", "code": code, "message": message}
