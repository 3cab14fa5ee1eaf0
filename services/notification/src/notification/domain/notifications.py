"""A notification and the coalescing rule: several messages in a short window become one.

A plain-message notification still unread and opened less than ``window`` ago grows (count,
latest seq, sender and preview) instead of a new one being created; mentions always stand alone,
so they are never hidden inside a "12 new messages".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from notification.domain.deciding import Decision, Kind, PostedMessage

PREVIEW_MAX = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One notification of one user."""

    id: str
    user_id: str
    kind: Kind
    created_at: datetime
    updated_at: datetime
    conversation_id: str | None = None
    sender_id: str | None = None
    seq: int | None = None
    count: int = 1
    preview: str = ""
    read: bool = False

    def can_absorb(self, decision: Decision, message: PostedMessage, window: timedelta) -> bool:
        """Whether ``message`` coalesces into this notification."""
        return (
            not self.read
            and self.kind == "message"
            and decision.kind == "message"
            and self.conversation_id == message.conversation_id
            and message.at - self.created_at < window
        )

    def absorb(self, message: PostedMessage) -> Notification:
        """This notification grown by one message."""
        count = self.count + 1
        return replace(
            self,
            count=count,
            seq=max(self.seq or 0, message.seq),
            sender_id=message.sender_id,
            preview=f"{count} new messages",
            updated_at=max(self.updated_at, message.at),
        )


def preview_of(body: str) -> str:
    """The first line of a message body, bounded for the notification."""
    line = body.strip().splitlines()[0] if body.strip() else ""
    return line if len(line) <= PREVIEW_MAX else line[: PREVIEW_MAX - 1] + "…"


def new_notification(
    notification_id: str, decision: Decision, message: PostedMessage
) -> Notification:
    """A fresh notification for one decision."""
    return Notification(
        id=notification_id,
        user_id=decision.user_id,
        kind=decision.kind,
        created_at=message.at,
        updated_at=message.at,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        seq=message.seq,
        preview=message.preview,
    )


def coalesce(
    open_notification: Notification | None,
    decision: Decision,
    message: PostedMessage,
    *,
    window: timedelta,
    new_id: str,
) -> tuple[Notification, bool]:
    """The notification for ``decision`` and whether it is new (False: an open one grew)."""
    if open_notification is not None and open_notification.can_absorb(decision, message, window):
        return open_notification.absorb(message), False
    return new_notification(new_id, decision, message), True
