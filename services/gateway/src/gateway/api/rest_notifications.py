"""``/api/v1/notifications``: the list, read marks, unread count, preferences (notification)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from contracts.notification import (
    GetNotificationPreferences,
    GetUnreadCount,
    ListNotifications,
    MarkNotificationsRead,
    NotificationList,
    NotificationPreferences,
    UnreadCount,
    UpdateNotificationPreferences,
)
from gateway.api import shapes
from gateway.api.rest_common import Deps, Me, cached_get, fresh_get, json_response
from gateway.api.schemas import NotificationPreferencesPut, NotificationsReadBody

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("")
async def list_notifications(
    request: Request,
    me: Me,
    deps: Deps,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response:
    """The caller's notifications, newest first."""

    async def load(_: list[str]) -> object:
        found: NotificationList = await deps.backend.call(
            ListNotifications(user_id=me.user_id, cursor=cursor, limit=limit), me.ctx
        )
        return shapes.page([shapes.notification(n) for n in found.items], found.next)

    return await fresh_get(request, load)


@router.post("/read")
async def mark_read(body: NotificationsReadBody, me: Me, deps: Deps) -> Response:
    """Mark ``ids``, a conversation's, or ``all`` notifications read; answers ``{count}`` unread."""
    command = MarkNotificationsRead(
        user_id=me.user_id, ids=list(body.ids), conversation_id=body.conversation_id, all=body.all
    )
    left: UnreadCount = await deps.backend.call(command, me.ctx)
    return json_response({"count": left.count})


@router.get("/unread-count")
async def unread_count(request: Request, me: Me, deps: Deps) -> Response:
    """``{count}`` of unread notifications."""

    async def load(_: list[str]) -> object:
        found: UnreadCount = await deps.backend.call(GetUnreadCount(user_id=me.user_id), me.ctx)
        return {"count": found.count}

    return await fresh_get(request, load)


@router.get("/preferences")
async def get_preferences(request: Request, me: Me, deps: Deps) -> Response:
    """The caller's notification preferences."""

    async def load(tags: list[str]) -> object:
        found: NotificationPreferences = await deps.backend.call(
            GetNotificationPreferences(user_id=me.user_id), me.ctx
        )
        tags.append(f"nprefs:{me.user_id}")
        return shapes.notification_preferences(found)

    return await cached_get(request, deps, me, "notification-preferences", load)


@router.put("/preferences")
async def put_preferences(body: NotificationPreferencesPut, me: Me, deps: Deps) -> Response:
    """Change the given notification preferences."""
    command = UpdateNotificationPreferences(
        user_id=me.user_id, **body.model_dump(exclude_none=True)
    )
    updated: NotificationPreferences = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"nprefs:{me.user_id}"])
    return json_response(shapes.notification_preferences(updated))
