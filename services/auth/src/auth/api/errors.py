"""Domain errors -> reply error codes (the stable codes the gateway maps to HTTP statuses)."""

from __future__ import annotations

from typing import Any

from auth.domain import errors
from contracts.base import ErrorCode, Reply

# Most specific first: RefreshTokenReused is an InvalidRefreshToken.
_CODES: list[tuple[type[errors.AuthError], ErrorCode]] = [
    (errors.InvalidInput, ErrorCode.INVALID),
    (errors.UsernameTaken, ErrorCode.CONFLICT),
    (errors.InvalidCredentials, ErrorCode.UNAUTHENTICATED),
    (errors.InvalidRefreshToken, ErrorCode.UNAUTHENTICATED),
    (errors.InvalidToken, ErrorCode.UNAUTHENTICATED),
    (errors.LoginThrottled, ErrorCode.RATE_LIMITED),
    (errors.SessionNotFound, ErrorCode.NOT_FOUND),
    (errors.AccountNotFound, ErrorCode.NOT_FOUND),
    (errors.Forbidden, ErrorCode.FORBIDDEN),
]


def failure(error: errors.AuthError) -> Reply[Any]:
    """The failed reply for a domain error (messages never echo passwords or tokens)."""
    for cls, code in _CODES:
        if isinstance(error, cls):
            retry = error.retry_after if isinstance(error, errors.LoginThrottled) else None
            field = error.field if isinstance(error, errors.InvalidInput) else None
            # A reused refresh token answers like any invalid one: the holder learns nothing.
            message = "invalid refresh token" if cls is errors.InvalidRefreshToken else str(error)
            return Reply.failure(code, message, retry_after=retry, field=field)
    return Reply.failure(ErrorCode.INTERNAL, "unexpected auth error")
