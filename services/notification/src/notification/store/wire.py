"""Domain notifications as the contracts' wire type, and back; the event that announces one."""

from __future__ import annotations

from contracts import notification as wire
from notification.domain.notifications import Notification


def to_wire(n: Notification) -> wire.Notification:
    """The contracts form of a notification."""
    return wire.Notification(
        id=n.id,
        user_id=n.user_id,
        kind=n.kind,
        created_at=n.created_at,
        updated_at=n.updated_at,
        conversation_id=n.conversation_id,
        sender_id=n.sender_id,
        seq=n.seq,
        count=n.count,
        preview=n.preview,
        read=n.read,
    )


def from_wire(n: wire.Notification) -> Notification:
    """The domain form of a wire notification."""
    return Notification(
        id=n.id,
        user_id=n.user_id,
        kind=n.kind,
        created_at=n.created_at,
        updated_at=n.updated_at or n.created_at,
        conversation_id=n.conversation_id,
        sender_id=n.sender_id,
        seq=n.seq,
        count=n.count,
        preview=n.preview,
        read=n.read,
    )


def created_event(n: Notification, unread_count: int) -> wire.NotificationCreated:
    """The event announcing ``n`` (created or grown) with its user's badge count after it."""
    return wire.NotificationCreated(
        user_id=n.user_id, notification=to_wire(n), unread_count=unread_count
    )
