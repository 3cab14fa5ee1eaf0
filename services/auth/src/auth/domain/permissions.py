"""Roles and the permissions they grant (the one table of the fleet's authorization)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

USER_PERMISSIONS = frozenset(
    {
        "chat.read",
        "chat.post",
        "chat.create_conversation",
        "profile.edit_own",
        "sessions.manage_own",
        "notifications.manage_own",
    }
)
ADMIN_PERMISSIONS = USER_PERMISSIONS | {
    "accounts.manage_roles",
    "sessions.revoke_any",
    "chat.moderate",
    "profile.edit_any",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {"user": USER_PERMISSIONS, "admin": ADMIN_PERMISSIONS}


@dataclass(frozen=True, slots=True)
class Grants:
    """The permissions one user holds (what the permission cache stores)."""

    permissions: tuple[str, ...]

    def allows(self, permission: str) -> bool:
        """Whether ``permission`` is granted."""
        return permission in self.permissions


def grants_for(roles: Iterable[str]) -> Grants:
    """The union of the permissions of ``roles`` (unknown roles grant nothing)."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return Grants(permissions=tuple(sorted(granted)))
