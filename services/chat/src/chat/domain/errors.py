"""The chat service's one exception root; every error carries a stable code for the caller."""

from __future__ import annotations


class ChatError(Exception):
    """Root of every chat error; ``code`` is one of the fleet's stable error codes."""

    code = "internal"


class InvalidError(ChatError):
    """The request breaks a rule of the model (bad member list, bad sequence number...)."""

    code = "invalid"


class GroupFullError(InvalidError):
    """Creating or growing a group beyond the member limit (``CHAT_MEMBER_LIMIT``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a group has at most {limit} members")
        self.limit = limit


class NotFoundError(ChatError):
    """No such conversation or message, or the caller may not see it (non-members read nothing)."""

    code = "not_found"


class ForbiddenError(ChatError):
    """The caller may see the conversation but not do this (role, ownership, blocks)."""

    code = "forbidden"


class ConflictError(ChatError):
    """The request clashes with the current state (editing a deleted message...)."""

    code = "conflict"


class RateLimitedError(ChatError):
    """Too many requests of this kind; ``retry_after`` seconds until the next one is admitted."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
