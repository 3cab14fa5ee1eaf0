"""The exception root of the notification service and the errors its handlers raise."""

from __future__ import annotations


class NotificationError(Exception):
    """Root of every error the notification service raises on purpose."""


class InvalidPreferencesError(NotificationError):
    """Preferences that cannot hold (an unknown time zone, half a do-not-disturb span)."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidCursorError(NotificationError):
    """A list cursor that this service did not issue."""


class DeliveryFailedError(NotificationError):
    """A channel gave up delivering after ``attempts`` attempts."""

    def __init__(self, message: str, *, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class UnsafeWebhookError(NotificationError):
    """A webhook URL that must not be called: wrong scheme, or a host that is (or resolves to)
    a loopback, private, link-local, multicast, reserved or otherwise internal address."""


class UnresolvedWebhookError(UnsafeWebhookError):
    """A webhook host that does not resolve (now: refused when set, retried at delivery)."""
