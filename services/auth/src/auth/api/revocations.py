"""The subscriber of ``auth.events`` in auth's own ``auth.revocations`` group.

A revocation is committed to the outbox before it is carried out in Redis (see
``SessionService._end``). An instance that dies in between leaves the event to the outbox relay;
this group reads every appended ``session_revoked`` and ends the session (again), so the
announcement and the session store agree. Ending an ended session is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.handlers.sessions import SessionService
from contracts import auth as wire
from contracts.base import Envelope, Message
from shared.bus import Handler

GROUP = "auth.revocations"


@dataclass(frozen=True)
class RevocationSubscribers:
    """Carries out announced revocations."""

    sessions: SessionService

    def table(self) -> dict[type[Message], Handler]:
        """Event class -> subscriber, for :class:`shared.bus.Consumer` (other types are skipped)."""
        return {wire.SessionRevoked: self.session_revoked}

    async def session_revoked(self, event: wire.SessionRevoked, env: Envelope) -> None:
        """``auth.session_revoked``: the session ends, whichever instance announced it."""
        await self.sessions.enforce(event.user_id, event.session_id)
