"""The exception root of the auth service and the domain errors its handlers raise.

Each error maps to one stable reply code at the api edge (see ``auth.api.errors``).
"""

from __future__ import annotations


class AuthError(Exception):
    """Root of every error the auth service raises on purpose."""


class InvalidInput(AuthError):
    """A field breaks a rule (username grammar, password policy, unknown role)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class UsernameTaken(AuthError):
    """Another account already has this username (compared case-insensitively)."""


class InvalidCredentials(AuthError):
    """Wrong username or password; deliberately does not say which."""


class LoginThrottled(AuthError):
    """Too many failed logins for this username or client address; retry after ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; retry after {retry_after:.0f} s")


class InvalidRefreshToken(AuthError):
    """A refresh token that is unknown, malformed, expired or revoked."""


class RefreshTokenReused(InvalidRefreshToken):
    """A refresh token that was already rotated was presented again: its family is revoked."""


class SessionNotFound(AuthError):
    """No live session with this id belongs to the user."""


class AccountNotFound(AuthError):
    """No account with this id."""


class Forbidden(AuthError):
    """The caller lacks the permission the operation needs."""


class InvalidToken(AuthError):
    """An access token failed verification (signature, key id, algorithm, audience or expiry)."""
