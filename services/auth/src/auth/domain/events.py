"""Domain events: facts the handlers announce, committed with the change they describe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RevocationReason = Literal[
    "logout", "revoked", "password_changed", "token_reuse", "expired", "admin"
]


@dataclass(frozen=True, slots=True)
class AccountRegistered:
    """An account was created."""

    user_id: str
    username: str
    display_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """A user's password changed."""

    user_id: str


@dataclass(frozen=True, slots=True)
class SessionRevoked:
    """A session ended; its access tokens stay verifiable until ``tokens_expire_at``."""

    user_id: str
    session_id: str
    reason: RevocationReason
    tokens_expire_at: datetime


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """A user's roles changed."""

    user_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PublicJwk:
    """A verification key in JWK terms (OKP / Ed25519)."""

    kid: str
    x: str
    not_after: datetime | None


@dataclass(frozen=True, slots=True)
class SigningKeysRotated:
    """The set of verification keys changed."""

    keys: tuple[PublicJwk, ...]


DomainEvent = (
    AccountRegistered | PasswordChanged | SessionRevoked | RoleChanged | SigningKeysRotated
)
