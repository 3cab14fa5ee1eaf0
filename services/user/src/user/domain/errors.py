"""The exception root of the user service's domain and the errors its rules raise."""

from __future__ import annotations


class UserError(Exception):
    """Root of every error the user service raises on purpose."""


class InvalidInputError(UserError):
    """A value breaks a rule; ``field`` names it so the caller can point at it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFoundError(UserError):
    """The user (or profile) does not exist."""
