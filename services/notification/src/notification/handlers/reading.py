"""Read status: list my notifications, mark them read, the unread badge."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from contracts.chat import ReadUpdated
from contracts.notification import (
    ListNotifications,
    MarkNotificationsRead,
    NotificationList,
    UnreadCount,
)
from notification.domain.errors import InvalidCursorError
from notification.handlers.delivering import Dispatch, Dispatcher
from notification.store.protocols import Badges, NotificationStore
from notification.store.wire import to_wire


def encode_cursor(at: datetime, notification_id: str) -> str:
    """An opaque cursor for the position after (``at``, ``notification_id``)."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{notification_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; InvalidCursorError when it is not ours."""
    try:
        at, notification_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(at), notification_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise InvalidCursorError(f"bad cursor {cursor[:40]!r}") from e


class ReadingHandlers:
    """Listing, marking read, counting."""

    def __init__(self, *, store: NotificationStore, badges: Badges, dispatcher: Dispatcher) -> None:
        self._store = store
        self._badges = badges
        self._dispatcher = dispatcher

    async def list_notifications(self, command: ListNotifications) -> NotificationList:
        """A page of the user's notifications, newest first."""
        before = decode_cursor(command.cursor) if command.cursor else None
        async with self._store.unit() as unit:
            page = await unit.page(command.user_id, before=before, limit=command.limit + 1)
        items, more = page[: command.limit], len(page) > command.limit
        cursor = encode_cursor(items[-1].updated_at, items[-1].id) if more else None
        return NotificationList(items=[to_wire(n) for n in items], next=cursor)

    async def unread_count(self, user_id: str) -> int:
        """The badge count (from Redis; reconciled from the database when missing)."""

        async def load() -> int:
            async with self._store.unit() as unit:
                return await unit.unread_count(user_id)

        return await self._badges.get(user_id, load)

    async def get_unread_count(self, user_id: str) -> UnreadCount:
        """The badge count as the command's result."""
        return UnreadCount(count=await self.unread_count(user_id))

    async def mark_read(self, command: MarkNotificationsRead) -> UnreadCount:
        """Mark by ids, a whole conversation, or everything; returns the exact new count."""
        return UnreadCount(
            count=await self._mark(
                command.user_id,
                ids=command.ids,
                conversation_id=command.conversation_id,
                up_to_seq=None,
                everything=command.all,
            )
        )

    async def on_read_updated(self, event: ReadUpdated, message_id: str) -> None:
        """The user read a conversation in chat up to a seq: what that covers is read."""
        await self._mark(
            event.user_id,
            ids=(),
            conversation_id=event.conversation_id,
            up_to_seq=event.seq,
            everything=False,
        )

    async def _mark(
        self,
        user_id: str,
        *,
        ids: list[str] | tuple[str, ...],
        conversation_id: str | None,
        up_to_seq: int | None,
        everything: bool,
    ) -> int:
        dispatch: Dispatch | None = None
        async with self._store.unit() as unit:
            changed = await unit.mark_read(
                user_id,
                ids=ids,
                conversation_id=conversation_id,
                up_to_seq=up_to_seq,
                everything=everything,
            )
            count = await unit.unread_count(user_id)
            if changed:
                # Marking read is idempotent: a redelivery finds nothing unread, stages nothing.
                dispatch = await self._dispatcher.read(
                    unit, user_id, ids=changed, conversation_id=conversation_id, unread_count=count
                )
        if dispatch is not None:
            try:
                await self._badges.add({user_id: -len(changed)})
            finally:
                await self._dispatcher.send(dispatch)
        return count
