"""Local projections of chat and user facts: membership, presence, viewing; join notifications."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from contracts.base import new_message_id, utcnow
from contracts.chat import ConversationCreated, MemberAdded, MemberRemoved
from contracts.notification import SetViewing
from contracts.user import PresenceChanged
from notification.domain.delivery import DeliveryJob
from notification.domain.notifications import Notification
from notification.handlers.delivering import Dispatch, Dispatcher
from notification.store.protocols import MembersCache, NotificationStore, RealtimeState


class ProjectionHandlers:
    """Keeps the membership projection and the real-time state current."""

    def __init__(
        self,
        *,
        store: NotificationStore,
        members: MembersCache,
        realtime: RealtimeState,
        dispatcher: Dispatcher,
        new_id: Callable[[], str] = new_message_id,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._store = store
        self._members = members
        self._realtime = realtime
        self._dispatcher = dispatcher
        self._new_id = new_id

    async def on_conversation_created(self, event: ConversationCreated, message_id: str) -> None:
        """The first members (the creator included)."""
        async with self._store.unit() as unit:
            if await unit.claim(message_id):
                await unit.add_members(event.conversation_id, [event.creator_id, *event.member_ids])
        # Also on a redelivery: a crash may have come between the commit and this drop.
        await self._members.invalidate(event.conversation_id)

    async def on_member_added(self, event: MemberAdded, message_id: str) -> None:
        """A member joined; someone else adding them tells them so."""
        notify = event.added_by is not None and event.added_by != event.user_id
        dispatch: Dispatch | None = None
        async with self._store.unit() as unit:
            if await unit.claim(message_id):
                await unit.add_members(event.conversation_id, [event.user_id])
                if notify:
                    n = Notification(
                        id=self._new_id(),
                        user_id=event.user_id,
                        kind="member_added",
                        created_at=self._clock(),
                        updated_at=self._clock(),
                        conversation_id=event.conversation_id,
                        sender_id=event.added_by,
                    )
                    await unit.save_notifications([n], [])
                    dispatch = await self._dispatcher.created(
                        unit, [DeliveryJob(notification=n, channel="in_app")], {n.user_id: 1}
                    )
        await self._members.invalidate(event.conversation_id)
        if dispatch is not None:
            await self._dispatcher.send(dispatch)

    async def on_member_removed(self, event: MemberRemoved, message_id: str) -> None:
        """A member left."""
        async with self._store.unit() as unit:
            if await unit.claim(message_id):
                await unit.remove_member(event.conversation_id, event.user_id)
        await self._members.invalidate(event.conversation_id)

    async def on_presence_changed(self, event: PresenceChanged, message_id: str) -> None:
        """Online/offline (ephemeral state; replaying it is harmless)."""
        await self._realtime.set_presence(event.user_id, online=event.status == "online")

    async def set_viewing(self, command: SetViewing) -> None:
        """The gateway reports the conversation a user has open."""
        await self._realtime.set_viewing(command.user_id, command.conversation_id)
