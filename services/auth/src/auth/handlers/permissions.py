"""Permission checks: a user's roles resolved to grants, cached under ``auth:``."""

from __future__ import annotations

from auth.domain.permissions import Grants, grants_for
from auth.store.protocols import PermissionCache, UnitOfWorkFactory


class PermissionService:
    """Answers whether a user holds a permission."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PermissionCache) -> None:
        self._uow = uow
        self._cache = cache

    async def check(self, user_id: str, permission: str) -> bool:
        """Whether ``user_id`` holds ``permission`` (False for an unknown user)."""

        async def load() -> Grants | None:
            async with self._uow() as uow:
                account = await uow.accounts.by_id(user_id)
            return None if account is None else grants_for(account.roles)

        grants = await self._cache.grants(user_id, load)
        return grants is not None and grants.allows(permission)

    async def forget(self, user_id: str) -> None:
        """Drop the cached grants of ``user_id`` (after its roles changed)."""
        await self._cache.forget(user_id)
