"""Messages of the auth service: account, token and session commands; account and session events.

Commands go to ``auth.commands`` (partitioned by username or user id so one account's commands run
in order); events go to ``auth.events`` (partitioned by user id).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from contracts.base import Command, Event, Id, UtcDatetime

__all__ = [
    "AccountRegistered",
    "ChangePassword",
    "CheckPermission",
    "ClientInfo",
    "GetPublicKeys",
    "ListSessions",
    "Login",
    "Logout",
    "PasswordChanged",
    "PermissionDecision",
    "PublicKey",
    "PublicKeys",
    "Refresh",
    "Register",
    "RevokeSession",
    "RevokedSessions",
    "RoleChanged",
    "SessionInfo",
    "SessionList",
    "SessionRevoked",
    "SetRoles",
    "SigningKeysRotated",
    "TokenPair",
]

COMMANDS = "auth.commands"
EVENTS = "auth.events"

# Bounds only; the password policy (length >= 10, not the username, not common) is a service rule
# answered with an `invalid` error, so it can change without a contract change.
Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
# Passwords and tokens travel sealed (SECRETS, shared.transit): the bounds leave room for the
# sealed text (base64 of nonce + tag + key id around up to 4 KiB of UTF-8); the clear values are
# bounded by the gateway (1024 characters) and by auth (tokens it issued).
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
Role = Literal["user", "admin"]
Roles = Annotated[list[Role], msgspec.Meta(max_length=8)]
Permission = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ClientInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the gateway knows about the client: address (for rate limits) and device label."""

    address: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    device: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens of a new or refreshed session; ``expires_in``: access-token lifetime (s).

    Both tokens travel sealed: a reply is kept in Redis for deduplication.
    """

    SECRETS: ClassVar[tuple[str, ...]] = ("access_token", "refresh_token")

    user_id: Id
    session_id: Id
    access_token: Token
    refresh_token: Token
    expires_in: Annotated[int, msgspec.Meta(ge=0)]


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One live session (device/login) of a user."""

    session_id: Id
    created_at: UtcDatetime
    last_used_at: UtcDatetime
    client: ClientInfo = ClientInfo()


class SessionList(msgspec.Struct, frozen=True, kw_only=True):
    """A user's live sessions."""

    items: Annotated[list[SessionInfo], msgspec.Meta(max_length=1000)]


class RevokedSessions(msgspec.Struct, frozen=True, kw_only=True):
    """How many sessions a revocation ended."""

    count: Annotated[int, msgspec.Meta(ge=0)]


class PublicKey(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A token-verification key as a JWK (OKP/Ed25519 or EC/P-256), with its retirement time."""

    kid: Id
    kty: Literal["OKP", "EC"]
    alg: Literal["EdDSA", "ES256"]
    crv: Literal["Ed25519", "P-256"]
    x: Annotated[str, msgspec.Meta(max_length=256)]
    y: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    not_after: UtcDatetime | None = None


class PublicKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Every key a token may currently be signed with (active first)."""

    keys: Annotated[list[PublicKey], msgspec.Meta(max_length=32)]


class PermissionDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a user holds a permission."""

    allowed: bool


class Register(Command, frozen=True, kw_only=True):
    """Create an account and its first session."""

    TYPE = "auth.register"
    STREAM = COMMANDS
    KEY = "username"
    RESULT = TokenPair

    SECRETS: ClassVar[tuple[str, ...]] = ("password",)

    username: Username
    password: Password
    display_name: DisplayName
    client: ClientInfo = ClientInfo()


class Login(Command, frozen=True, kw_only=True):
    """Open a session with a username and password (rate limited per username and address)."""

    TYPE = "auth.login"
    STREAM = COMMANDS
    KEY = "username"
    RESULT = TokenPair
    SECRETS: ClassVar[tuple[str, ...]] = ("password",)

    username: Username
    password: Password
    client: ClientInfo = ClientInfo()


class Refresh(Command, frozen=True, kw_only=True):
    """Rotate a refresh token; a reused one revokes its whole family."""

    TYPE = "auth.refresh"
    STREAM = COMMANDS
    RESULT = TokenPair
    SECRETS: ClassVar[tuple[str, ...]] = ("refresh_token",)

    refresh_token: Token
    client: ClientInfo = ClientInfo()


class Logout(Command, frozen=True, kw_only=True):
    """End the session the caller's access token belongs to."""

    TYPE = "auth.logout"
    STREAM = COMMANDS
    KEY = "user_id"

    user_id: Id
    session_id: Id


class RevokeSession(Command, frozen=True, kw_only=True):
    """Revoke one session of a user, or all of them (``session_id`` None) except ``keep``."""

    TYPE = "auth.revoke_session"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = RevokedSessions

    user_id: Id
    session_id: Id | None = None
    keep_session_id: Id | None = None


class ListSessions(Command, frozen=True, kw_only=True):
    """List a user's live sessions."""

    TYPE = "auth.list_sessions"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = SessionList

    user_id: Id


class ChangePassword(Command, frozen=True, kw_only=True):
    """Change a password; revokes every other session of the user.

    A wrong ``old_password`` counts as a failed login of the account from ``client.address``.
    """

    TYPE = "auth.change_password"
    STREAM = COMMANDS
    KEY = "user_id"
    SECRETS: ClassVar[tuple[str, ...]] = ("old_password", "new_password")

    user_id: Id
    session_id: Id
    old_password: Password
    new_password: Password
    client: ClientInfo = ClientInfo()


class GetPublicKeys(Command, frozen=True, kw_only=True):
    """The public keys that verify access tokens."""

    TYPE = "auth.get_public_keys"
    STREAM = COMMANDS
    RESULT = PublicKeys


class CheckPermission(Command, frozen=True, kw_only=True):
    """Whether a user holds a permission (cached by auth, invalidated on role change)."""

    TYPE = "auth.check_permission"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = PermissionDecision

    user_id: Id
    permission: Permission


class SetRoles(Command, frozen=True, kw_only=True):
    """Give a user exactly ``roles``; ``actor_id`` must hold ``accounts.manage_roles``."""

    TYPE = "auth.set_roles"
    STREAM = COMMANDS
    KEY = "user_id"

    actor_id: Id
    user_id: Id
    roles: Roles


class AccountRegistered(Event, frozen=True, kw_only=True):
    """An account was created; the user service creates its profile."""

    TYPE = "auth.account_registered"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    username: Username
    display_name: DisplayName
    roles: Roles = msgspec.field(default_factory=lambda: ["user"])


class PasswordChanged(Event, frozen=True, kw_only=True):
    """A user's password changed (other sessions are revoked separately)."""

    TYPE = "auth.password_changed"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id


class SessionRevoked(Event, frozen=True, kw_only=True):
    """A session ended; gateways refuse its access tokens until ``tokens_expire_at``."""

    TYPE = "auth.session_revoked"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    session_id: Id
    reason: Literal["logout", "revoked", "password_changed", "token_reuse", "expired", "admin"]
    tokens_expire_at: UtcDatetime


class RoleChanged(Event, frozen=True, kw_only=True):
    """A user's roles changed (permission caches drop their entries)."""

    TYPE = "auth.role_changed"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    roles: Roles


class SigningKeysRotated(Event, frozen=True, kw_only=True):
    """The set of token-verification keys changed; gateways replace theirs."""

    TYPE = "auth.signing_keys_rotated"
    STREAM = EVENTS

    keys: Annotated[list[PublicKey], msgspec.Meta(max_length=32)]
