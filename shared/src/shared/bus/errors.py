"""The exception root of the event bus and the errors callers catch."""

from __future__ import annotations

from shared.breaker import CircuitOpenError


class BusError(Exception):
    """Base of every error the event bus raises."""


class RequestTimeoutError(BusError):
    """No reply to a command arrived within the timeout (the command may still run later)."""

    def __init__(self, command_type: str, message_id: str, timeout: float) -> None:
        self.command_type = command_type
        self.message_id = message_id
        self.timeout = timeout
        super().__init__(f"no reply to {command_type} {message_id} within {timeout:.3f}s")


class TargetCircuitOpen(CircuitOpenError, BusError):
    """A command refused without being sent: the breaker of its target (the commands stream of
    one service) is open after requests to it failed or went unanswered."""


class UnknownStreamError(BusError):
    """A stream the caller names is not declared in the registry."""


class PermanentError(BusError):
    """Raised by a handler for a failure that no retry can fix: dead-lettered at once."""


class DeadLetterError(BusError):
    """A dead-letter entry is missing or cannot be redriven."""
