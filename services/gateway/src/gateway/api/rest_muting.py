"""``/api/v1/conversations/{id}/notifications``: the caller's mute and level for one conversation.

The setting is the notification service's; the conversation is chat's. Both routes first ask chat
for the conversation, so a non-member gets the 404 an absent conversation gets, and nobody stores
settings for a conversation they cannot see.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from contracts.chat import GetConversation
from contracts.notification import (
    ConversationNotifications,
    GetConversationNotifications,
    SetConversationNotifications,
)
from gateway.api.rest_common import Deps, Me, fresh_get, json_response
from gateway.api.schemas import ConversationNotificationsPut
from gateway.domain import errors
from gateway.domain.errors import GatewayError

router = APIRouter(prefix="/conversations", tags=["notifications"])
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

# "Muted until unmuted" is stored as a mute that ends at the end of time.
MUTED_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _utc(until: datetime | None) -> datetime:
    """``until`` in UTC, at most the end of time (a date near it may not shift zones)."""
    if until is None:
        return MUTED_FOREVER
    try:
        return min(until.astimezone(UTC), MUTED_FOREVER)
    except OverflowError:  # within a day of year 1 or of year 9999
        return MUTED_FOREVER if until.year > 1 else datetime.min.replace(tzinfo=UTC)


def _shape(found: ConversationNotifications) -> dict[str, object]:
    until = found.muted_until
    return {
        "conversation_id": found.conversation_id,
        "muted": until is not None and until > datetime.now(UTC),
        "muted_until": until,
        "level": found.level,
    }


@router.get("/{conversation_id}/notifications")
async def get_conversation_notifications(
    conversation_id: IdPath, request: Request, me: Me, deps: Deps
) -> Response:
    """``{conversation_id, muted, muted_until, level}`` of the caller (members only)."""

    async def load(_: list[str]) -> object:
        await deps.backend.call(
            GetConversation(user_id=me.user_id, conversation_id=conversation_id), me.ctx
        )
        found: ConversationNotifications = await deps.backend.call(
            GetConversationNotifications(user_id=me.user_id, conversation_id=conversation_id),
            me.ctx,
        )
        return _shape(found)

    return await fresh_get(request, load)


@router.put("/{conversation_id}/notifications")
async def put_conversation_notifications(
    conversation_id: IdPath, body: ConversationNotificationsPut, me: Me, deps: Deps
) -> Response:
    """Mute (until a time, or until unmuted), unmute, or override the level (members only)."""
    until = body.muted_until
    if until is not None and not body.muted:
        raise GatewayError(errors.INVALID, "muted_until needs muted: true", field="muted_until")
    if body.muted:
        until = _utc(until)
        if until <= datetime.now(UTC):
            raise GatewayError(errors.INVALID, "muted_until is in the past", field="muted_until")
    await deps.backend.call(
        GetConversation(user_id=me.user_id, conversation_id=conversation_id), me.ctx
    )
    command = SetConversationNotifications(
        user_id=me.user_id,
        conversation_id=conversation_id,
        muted_until=until,
        level=body.level,
    )
    saved: ConversationNotifications = await deps.backend.call(command, me.ctx)
    return json_response(_shape(saved))
