"""Accounts: the username grammar, the password policy, roles, and the account record.

Usernames: 3-32 characters from ``A-Z a-z 0-9 _ . -``, starting with a letter or digit. They are
unique case-insensitively: the account keeps the spelling it was registered with, and a normalized
(lower-case) copy carries the unique constraint. The alphabet is ASCII only, so lower-casing is the
whole normalization (no Unicode confusables to fold).

Passwords: at least 10 characters (at most 1024, the contract bound), not the username in any
case, and not on the shipped list of common passwords (compared case-insensitively).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from importlib import resources

from auth.domain.errors import InvalidInput

USERNAME_MIN = 3
USERNAME_MAX = 32
PASSWORD_MIN = 10
PASSWORD_MAX = 1024
ROLES = ("user", "admin")
DEFAULT_ROLES = ("user",)

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def normalize_username(username: str) -> str:
    """The form the uniqueness check compares: lower case."""
    return username.lower()


def check_username(username: str) -> None:
    """Raise :class:`InvalidInput` unless ``username`` follows the grammar."""
    if not USERNAME_MIN <= len(username) <= USERNAME_MAX:
        raise InvalidInput("username", f"must be {USERNAME_MIN} to {USERNAME_MAX} characters")
    if not _USERNAME.match(username):
        raise InvalidInput(
            "username", "use letters, digits, '_', '.', '-', starting with a letter or digit"
        )


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case), read once."""
    text = resources.files("auth.domain").joinpath("common_passwords.txt").read_text("utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_password(password: str, *, username: str, common: frozenset[str] | None = None) -> None:
    """Raise :class:`InvalidInput` (field ``password``) unless ``password`` meets the policy."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput("password", f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput("password", f"must be at most {PASSWORD_MAX} characters")
    if password.lower() == username.lower():
        raise InvalidInput("password", "must not be the username")
    if password.lower() in (common_passwords() if common is None else common):
        raise InvalidInput("password", "is too common; choose another")


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """The roles, deduplicated in a stable order; :class:`InvalidInput` for an unknown one."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise InvalidInput("roles", f"roles must be a non-empty subset of {ROLES}")
    return tuple(r for r in ROLES if r in roles)


@dataclass(frozen=True, slots=True)
class Account:
    """One account as stored: the password hash never leaves the service."""

    user_id: str
    username: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: datetime
    password_changed_at: datetime

    @property
    def username_key(self) -> str:
        """The normalized username (the unique column)."""
        return normalize_username(self.username)

    def with_password(self, password_hash: str, *, now: datetime) -> Account:
        """A copy with the hash of a new password."""
        return replace(self, password_hash=password_hash, password_changed_at=now)

    def rehashed(self, password_hash: str) -> Account:
        """A copy with the same password hashed under the current parameters."""
        return replace(self, password_hash=password_hash)

    def with_roles(self, roles: tuple[str, ...]) -> Account:
        """A copy with other roles (checked)."""
        return replace(self, roles=check_roles(roles))
