"""Notification preferences per user and per conversation, and the user facts they draw on."""

from __future__ import annotations

from contracts.notification import (
    ConversationNotifications,
    GetConversationNotifications,
    NotificationPreferences,
    SetConversationNotifications,
    UpdateNotificationPreferences,
)
from contracts.user import PreferencesUpdated, ProfileUpdated, UserBlocked, UserUnblocked
from notification.domain.errors import InvalidPreferencesError, UnsafeWebhookError
from notification.domain.preferences import (
    ConversationSettings,
    UserSettings,
    check_time_zone,
    parse_clock,
)
from notification.store.protocols import AudienceCache, NotificationStore, Unit, Webhooks


def _view(settings: UserSettings, *, secret: str | None = None) -> NotificationPreferences:
    return NotificationPreferences(
        webhook_secret=secret,
        level=settings.level,
        dnd_start=settings.dnd_start.strftime("%H:%M") if settings.dnd_start else None,
        dnd_end=settings.dnd_end.strftime("%H:%M") if settings.dnd_end else None,
        time_zone=settings.time_zone,
        webhook_url=settings.webhook_url,
    )


class PreferenceHandlers:
    """Reads and changes preferences; every change invalidates the user's cached audience."""

    def __init__(
        self, *, store: NotificationStore, audiences: AudienceCache, webhooks: Webhooks
    ) -> None:
        self._store = store
        self._audiences = audiences
        self._webhooks = webhooks

    async def get(self, user_id: str) -> NotificationPreferences:
        """A user's preferences (defaults when never set)."""
        async with self._store.unit() as unit:
            return _view((await unit.audience(user_id)).settings)

    async def update(self, command: UpdateNotificationPreferences) -> NotificationPreferences:
        """Apply the given fields; raises InvalidPreferencesError."""
        changes: dict[str, object] = {}
        if command.level is not None:
            changes["level"] = command.level
        if command.time_zone is not None:
            changes["time_zone"] = check_time_zone(command.time_zone)
        if command.clear_dnd:
            changes["dnd_start"] = changes["dnd_end"] = None
        if command.dnd_start is not None:
            changes["dnd_start"] = parse_clock(command.dnd_start)
        if command.dnd_end is not None:
            changes["dnd_end"] = parse_clock(command.dnd_end)
        if command.clear_webhook:
            changes["webhook_url"] = None
        if command.webhook_url is not None:
            await self._check_webhook(command.webhook_url)
            changes["webhook_url"] = command.webhook_url
        settings = await self._change(command.user_id, None, changes)
        return _view(settings, secret=await self._webhook_secret(command, settings))

    async def _check_webhook(self, url: str) -> None:
        try:
            await self._webhooks.check(url)
        except UnsafeWebhookError as e:
            raise InvalidPreferencesError(f"refused webhook URL: {e}", field="webhook_url") from e
        if not self._webhooks.enabled:
            raise InvalidPreferencesError(
                "webhooks are not enabled on this server", field="webhook_url"
            )

    async def _webhook_secret(
        self, command: UpdateNotificationPreferences, settings: UserSettings
    ) -> str | None:
        """A new secret when the URL was set or a rotation asked (shown this once)."""
        if not self._webhooks.enabled:
            return None
        if settings.webhook_url is None:
            if command.rotate_webhook_secret:
                raise InvalidPreferencesError(
                    "there is no webhook to rotate the secret of", field="rotate_webhook_secret"
                )
            if command.clear_webhook:
                await self._webhooks.forget_secret(command.user_id)
            return None
        if command.webhook_url is not None or command.rotate_webhook_secret:
            return await self._webhooks.issue_secret(command.user_id)
        return None

    async def get_conversation(
        self, command: GetConversationNotifications
    ) -> ConversationNotifications:
        """A user's settings for one conversation (defaults when never set)."""
        async with self._store.unit() as unit:
            audience = await unit.audience(command.user_id)
        settings = audience.conversations.get(command.conversation_id, ConversationSettings())
        return ConversationNotifications(
            conversation_id=command.conversation_id,
            muted_until=settings.muted_until,
            level=settings.level,
        )

    async def set_conversation(
        self, command: SetConversationNotifications
    ) -> ConversationNotifications:
        """Mute a conversation until a time and/or override its level."""
        settings = ConversationSettings(muted_until=command.muted_until, level=command.level)
        async with self._store.unit() as unit:
            await unit.save_conversation_settings(
                command.user_id, command.conversation_id, settings
            )
        await self._audiences.invalidate(command.user_id)
        return ConversationNotifications(
            conversation_id=command.conversation_id,
            muted_until=command.muted_until,
            level=command.level,
        )

    async def on_preferences_updated(self, event: PreferencesUpdated, message_id: str) -> None:
        """The user service's notification level becomes this service's level."""
        await self._change(event.user_id, message_id, {"level": event.preferences.notifications})

    async def on_profile_updated(self, event: ProfileUpdated, message_id: str) -> None:
        """Do-not-disturb hours follow the profile's time zone."""
        zone = event.profile.time_zone
        try:
            check_time_zone(zone)
        except InvalidPreferencesError:
            return  # an unknown zone in another service's data must not stop this handler
        await self._change(event.user_id, message_id, {"time_zone": zone})

    async def on_user_blocked(self, event: UserBlocked, message_id: str) -> None:
        """Project a block."""
        await self._block(event.user_id, event.blocked_id, message_id, blocked=True)

    async def on_user_unblocked(self, event: UserUnblocked, message_id: str) -> None:
        """Project a lifted block."""
        await self._block(event.user_id, event.blocked_id, message_id, blocked=False)

    async def _block(
        self, user_id: str, blocked_id: str, message_id: str, *, blocked: bool
    ) -> None:
        async with self._store.unit() as unit:
            if not await unit.claim(message_id):
                return
            await unit.set_block(user_id, blocked_id, blocked=blocked)
        await self._audiences.invalidate(user_id)

    async def _change(
        self, user_id: str, message_id: str | None, changes: dict[str, object]
    ) -> UserSettings:
        async with self._store.unit() as unit:
            settings = await _current(unit, user_id)
            if message_id is not None and not await unit.claim(message_id):
                return settings
            settings = settings.with_changes(**changes)
            await unit.save_settings(user_id, settings)
        await self._audiences.invalidate(user_id)
        return settings


async def _current(unit: Unit, user_id: str) -> UserSettings:
    return (await unit.audience(user_id)).settings
