"""What the handlers need from storage, as protocols: SQL, caches and fakes implement them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from contracts.base import Event, Message
from shared.outbox import Staged
from user.domain.preferences import Preferences
from user.domain.presence import PresenceChange, PresenceState
from user.domain.profiles import Profile


class ProfileStore(Protocol):
    """Profiles by user id."""

    async def create(
        self, profile: Profile, *, message_id: str, events: Sequence[Staged] = ()
    ) -> bool:
        """Store a new profile unless ``message_id`` was handled or the user exists.

        The message id goes into the inbox in the same transaction, so a redelivered
        registration creates nothing twice; ``events`` go into the outbox in that transaction
        only when the profile is created. Returns whether the profile was created.
        """
        ...

    async def get(self, user_id: str) -> Profile | None:
        """One profile, or None."""
        ...

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        """The profiles that exist among ``user_ids``, by id."""
        ...

    async def save(self, profile: Profile, *, events: Sequence[Staged] = ()) -> None:
        """Write back a changed profile (the user exists), ``events`` in the same transaction."""
        ...

    async def search(self, prefix: str, *, limit: int) -> list[Profile]:
        """Profiles whose lower-cased username starts with ``prefix``, by username."""
        ...


class RelationshipStore(Protocol):
    """Contacts and blocks. Adds and removes return whether anything changed; their ``events``
    go into the outbox in the same transaction, and only when something changed."""

    async def add_contact(
        self, user_id: str, contact_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """Add a contact (no-op if present)."""
        ...

    async def remove_contact(
        self, user_id: str, contact_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """Remove a contact (no-op if absent)."""
        ...

    async def contacts(self, user_id: str) -> list[str]:
        """``user_id``'s contacts, oldest first."""
        ...

    async def watchers(self, user_id: str) -> list[str]:
        """Users who list ``user_id`` as a contact."""
        ...

    async def block(
        self, user_id: str, blocked_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """Block a user (no-op if blocked)."""
        ...

    async def unblock(
        self, user_id: str, blocked_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """Lift a block (no-op if absent)."""
        ...

    async def blocks(self, user_id: str) -> list[str]:
        """Users ``user_id`` blocked, oldest first."""
        ...

    async def blocked_by(self, user_id: str) -> list[str]:
        """Users who blocked ``user_id`` (whose presence ``user_id`` does not see)."""
        ...


class PreferenceStore(Protocol):
    """Preferences by user id."""

    async def get(self, user_id: str) -> Preferences | None:
        """Stored preferences, or None when the user never set any."""
        ...

    async def save(
        self,
        user_id: str,
        preferences: Preferences,
        *,
        at: datetime,
        events: Sequence[Staged] = (),
    ) -> None:
        """Store a user's preferences, ``events`` in the same transaction."""
        ...


class PresenceStore(Protocol):
    """Per-device presence with debounced transitions; each transition is returned once."""

    async def connected(self, user_id: str, device_id: str) -> PresenceChange | None:
        """A device opened or heartbeated: it counts as there for the device TTL."""
        ...

    async def disconnected(self, user_id: str, device_id: str) -> PresenceChange | None:
        """A device closed; the user goes offline after the grace unless a device returns."""
        ...

    async def sweep(self, *, limit: int) -> list[PresenceChange]:
        """Settle users whose devices expired or whose grace ended; returns the transitions."""
        ...

    async def states(self, user_ids: Sequence[str]) -> list[PresenceState]:
        """Presence of many users in one call, in the order asked."""
        ...


class EventOutbox(Protocol):
    """Durable events: stored with the change they announce (``shared.outbox.Outbox`` is one).

    A handler stages its events, hands them to the store method that makes the change (which
    writes them in its transaction when something changed), and sends them once it returned.
    """

    def stage(self, event: Event) -> Staged:
        """``event`` with its envelope and partition key, ready to be written and sent."""
        ...

    async def send(self, staged: Sequence[Staged]) -> bool:
        """Append committed events; never raises (False: the relay appends them later)."""
        ...


class EventPublisher(Protocol):
    """Appends ephemeral events (presence) to the service's streams (``shared.bus.Publisher``)."""

    async def publish(self, message: Message) -> Any:
        """Append ``message`` to its stream."""
        ...


class PersonalChannels(Protocol):
    """Real-time fan-out to one user's personal channel (``rt:{user:<id>}``); may drop."""

    async def send(self, user_id: str, message: Message) -> None:
        """Best effort: publish ``message`` on ``user_id``'s personal channel."""
        ...
