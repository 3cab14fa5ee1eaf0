"""The gateway's exception root and the stable error codes clients see.

Every error the gateway raises on purpose derives from :class:`GatewayError` and carries a stable
``code`` (the ``error.code`` of a JSON error body, the ``code`` of a WebSocket error frame). The
HTTP status of each code lives in :data:`HTTP_STATUS`, so REST and GraphQL map errors alike.
"""

from __future__ import annotations

from typing import Final

INVALID: Final = "invalid"
UNAUTHENTICATED: Final = "unauthenticated"
TOKEN_EXPIRED: Final = "token_expired"  # noqa: S105 - an error code
FORBIDDEN: Final = "forbidden"
NOT_FOUND: Final = "not_found"
CONFLICT: Final = "conflict"
RATE_LIMITED: Final = "rate_limited"
TOO_MANY_CONNECTIONS: Final = "too_many_connections"
PAYLOAD_TOO_LARGE: Final = "payload_too_large"
UNAVAILABLE: Final = "unavailable"
EXPIRED: Final = "expired"
NOT_IMPLEMENTED: Final = "not_implemented"
INTERNAL: Final = "internal"

HTTP_STATUS: Final[dict[str, int]] = {
    INVALID: 422,
    UNAUTHENTICATED: 401,
    TOKEN_EXPIRED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    CONFLICT: 409,
    PAYLOAD_TOO_LARGE: 413,
    RATE_LIMITED: 429,
    TOO_MANY_CONNECTIONS: 429,
    INTERNAL: 500,
    NOT_IMPLEMENTED: 501,
    UNAVAILABLE: 503,
    EXPIRED: 504,
}
"""HTTP status of every stable code; an unknown code is answered 500."""


def http_status(code: str) -> int:
    """The HTTP status of a stable error code (500 for a code this table does not know)."""
    return HTTP_STATUS.get(code, 500)


class GatewayError(Exception):
    """Root of every gateway error: a stable ``code`` and a message safe to show a client."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        retry_after: float | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.replace("_", " ")
        self.retry_after = retry_after
        self.field = field
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with."""
        return http_status(self.code)
