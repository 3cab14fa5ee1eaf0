"""Contact and block use cases."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import user as wire
from contracts.base import Envelope
from user.domain.errors import NotFoundError
from user.domain.relationships import check_block, check_contact
from user.store.protocols import EventOutbox, ProfileStore, RelationshipStore


class RelationshipHandlers:
    """Handlers of contact and block commands; each change is announced once, its event
    committed with it (outbox) and appended after."""

    def __init__(
        self, relationships: RelationshipStore, profiles: ProfileStore, events: EventOutbox
    ) -> None:
        self._relationships = relationships
        self._profiles = profiles
        self._events = events

    async def add_contact(self, command: wire.AddContact, _: Envelope) -> None:
        """Add a contact (adding one twice is not an error and announces nothing)."""
        contacts = await self._relationships.contacts(command.user_id)
        check_contact(command.user_id, command.contact_id, current_count=len(contacts))
        await self._both_exist(command.user_id, command.contact_id)
        staged = [
            self._events.stage(
                wire.ContactAdded(user_id=command.user_id, contact_id=command.contact_id)
            )
        ]
        if await self._relationships.add_contact(
            command.user_id, command.contact_id, at=datetime.now(UTC), events=staged
        ):
            await self._events.send(staged)

    async def remove_contact(self, command: wire.RemoveContact, _: Envelope) -> None:
        """Remove a contact (removing an absent one is not an error)."""
        staged = [
            self._events.stage(
                wire.ContactRemoved(user_id=command.user_id, contact_id=command.contact_id)
            )
        ]
        if await self._relationships.remove_contact(
            command.user_id, command.contact_id, events=staged
        ):
            await self._events.send(staged)

    async def list_contacts(self, command: wire.ListContacts, _: Envelope) -> wire.UserIdList:
        """The user's contacts, oldest first."""
        return wire.UserIdList(items=await self._relationships.contacts(command.user_id))

    async def block_user(self, command: wire.BlockUser, _: Envelope) -> None:
        """Block a user: announced so chat refuses direct conversations and notification
        drops notifications from them."""
        check_block(command.user_id, command.blocked_id)
        await self._both_exist(command.user_id, command.blocked_id)
        staged = [
            self._events.stage(
                wire.UserBlocked(user_id=command.user_id, blocked_id=command.blocked_id)
            )
        ]
        if await self._relationships.block(
            command.user_id, command.blocked_id, at=datetime.now(UTC), events=staged
        ):
            await self._events.send(staged)

    async def unblock_user(self, command: wire.UnblockUser, _: Envelope) -> None:
        """Lift a block (lifting an absent one is not an error)."""
        staged = [
            self._events.stage(
                wire.UserUnblocked(user_id=command.user_id, blocked_id=command.blocked_id)
            )
        ]
        if await self._relationships.unblock(command.user_id, command.blocked_id, events=staged):
            await self._events.send(staged)

    async def list_blocks(self, command: wire.ListBlocks, _: Envelope) -> wire.UserIdList:
        """The users this user blocked, oldest first."""
        return wire.UserIdList(items=await self._relationships.blocks(command.user_id))

    async def _both_exist(self, user_id: str, other_id: str) -> None:
        found = await self._profiles.get_many([user_id, other_id])
        for uid in (user_id, other_id):
            if uid not in found:
                raise NotFoundError(f"no user {uid}")
