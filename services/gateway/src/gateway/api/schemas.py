"""Request bodies of the REST API, with the bounds the services enforce (checked here first)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from contracts.text import CONTROL_MESSAGE, forbidden_control
from gateway.domain.bounds import MAX_SEQ


def _printable(value: str) -> str:
    """People's text as the contracts allow it (chat applies the same rule)."""
    if forbidden_control(value) is not None:
        raise ValueError(CONTROL_MESSAGE)
    return value


IdStr = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
DisplayName = Annotated[str, Field(min_length=1, max_length=64)]
Body = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_printable)]
Title = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterBody(_Body):
    """``POST /auth/register``."""

    username: Username
    password: Password
    display_name: DisplayName


class LoginBody(_Body):
    """``POST /auth/login``."""

    username: Username
    password: Password


class RefreshBody(_Body):
    """``POST /auth/refresh``."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class PasswordBody(_Body):
    """``POST /auth/password``."""

    old_password: Password
    new_password: Password


class TokensOut(BaseModel):
    """Tokens of a new or refreshed session; ``expires_in``: access-token lifetime (s)."""

    user_id: str
    access_token: str
    refresh_token: str
    expires_in: int


class ProfilePatch(_Body):
    """``PATCH /users/me``: only the fields given change."""

    display_name: DisplayName | None = None
    avatar_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://")] | None = None
    bio: Annotated[str, Field(max_length=500)] | None = None
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class PreferencesPut(_Body):
    """``PUT /users/me/preferences``: only the fields given change."""

    language: Annotated[str, Field(min_length=2, max_length=35)] | None = None
    theme: Literal["system", "light", "dark"] | None = None
    notifications: Literal["all", "mentions", "none"] | None = None
    notification_sound: bool | None = None


class UserRef(_Body):
    """``POST /users/me/contacts`` and ``/users/me/blocks``."""

    user_id: IdStr


class ConversationCreate(_Body):
    """``POST /conversations``: ``member_ids`` are the others, not the creator."""

    kind: Literal["direct", "group"]
    title: Title | None = None
    member_ids: Annotated[list[IdStr], Field(min_length=1, max_length=1000)]


class MembersAdd(_Body):
    """``POST /conversations/{id}/members``."""

    member_ids: Annotated[list[IdStr], Field(min_length=1, max_length=1000)]


class MessagePost(_Body):
    """``POST /conversations/{id}/messages``; ``client_msg_id`` makes a retry a replay."""

    body: Body
    client_msg_id: IdStr
    mentions: Annotated[list[IdStr], Field(max_length=50)] = []


class MessageEdit(_Body):
    """``PATCH /conversations/{id}/messages/{seq}``."""

    body: Body


class ReadBody(_Body):
    """``POST /conversations/{id}/read``."""

    seq: Annotated[int, Field(ge=0, le=MAX_SEQ)]


class NotificationsReadBody(_Body):
    """``POST /notifications/read``: these ids, a conversation's, or ``all``."""

    ids: Annotated[list[IdStr], Field(max_length=100)] = []
    conversation_id: IdStr | None = None
    all: bool = False


class NotificationPreferencesPut(_Body):
    """``PUT /notifications/preferences``: only the fields given change."""

    level: Literal["all", "mentions", "none"] | None = None
    dnd_start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    dnd_end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    webhook_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://")] | None = None
    clear_dnd: bool = False
    clear_webhook: bool = False
    rotate_webhook_secret: bool = False


class ConversationNotificationsPut(_Body):
    """``PUT /conversations/{id}/notifications``: the whole setting (unset fields: defaults).

    ``muted`` without ``muted_until`` mutes until unmuted; ``level`` overrides the caller's
    level in this conversation only (null: their level)."""

    muted: bool = False
    muted_until: AwareDatetime | None = None
    level: Literal["all", "mentions", "none"] | None = None
