"""WebSocket close codes of the gateway (RFC 6455 4000-4999: private use), and what they mean.

A client reacts to the code, not to the reason text: see docs/websocket.md.
"""

from __future__ import annotations

from typing import Final

NORMAL: Final = 1000
"""The client or the server ended the connection normally."""
GOING_AWAY: Final = 1001
"""The gateway is shutting down: reconnect (to another instance) and resume."""
INTERNAL_ERROR: Final = 1011
"""Unexpected failure in the gateway: reconnect with backoff and resume."""
TRY_AGAIN_LATER: Final = 1013
"""A service the connection needs is unavailable: reconnect with backoff."""

UNAUTHENTICATED: Final = 4001
"""No token, an invalid one, or no ``auth`` frame in time: log in again."""
TOKEN_EXPIRED: Final = 4002
"""The access token expired (at connect or while connected): refresh it and reconnect."""
SESSION_REVOKED: Final = 4003
"""The session was revoked (logout, password change, admin): log in again."""
SLOW_CONSUMER: Final = 4008
"""The client read too slowly and its send queue filled with essential frames: reconnect, resume."""

TOO_MANY_CONNECTIONS: Final = 4009
"""The user already holds as many WebSockets as allowed (over every gateway): close another one,
or wait and reconnect with backoff."""
RATE_LIMITED: Final = 4029
"""Too many handshakes from this address, or a connection kept sending frames after it was told
``rate_limited``: reconnect after the error frame's ``retry_after``, and send less."""

REASONS: Final[dict[int, str]] = {
    NORMAL: "normal",
    GOING_AWAY: "going away",
    INTERNAL_ERROR: "internal error",
    TRY_AGAIN_LATER: "try again later",
    UNAUTHENTICATED: "unauthenticated",
    TOKEN_EXPIRED: "token expired",
    SESSION_REVOKED: "session revoked",
    SLOW_CONSUMER: "too slow",
    TOO_MANY_CONNECTIONS: "too many connections",
    RATE_LIMITED: "rate limited",
}
