"""Accounts: register, change password, change roles."""

from __future__ import annotations

import uuid

from auth.crypto.passwords import PasswordHasher
from auth.domain.accounts import (
    DEFAULT_ROLES,
    Account,
    check_password,
    check_username,
    normalize_username,
)
from auth.domain.errors import AccountNotFound, Forbidden, InvalidCredentials, LoginThrottled
from auth.domain.events import AccountRegistered, PasswordChanged, RoleChanged
from auth.domain.sessions import ClientDetails, IssuedTokens
from auth.handlers.permissions import PermissionService
from auth.handlers.ports import Clock, utc_now
from auth.handlers.replays import decode_tokens, encode_tokens
from auth.handlers.sessions import SessionService
from auth.store.protocols import LoginGuard, UnitOfWorkFactory


class AccountService:
    """Use cases on accounts; every one is idempotent per command message id."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        sessions: SessionService,
        permissions: PermissionService,
        guard: LoginGuard,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._guard = guard
        self._hasher = hasher
        self._sessions = sessions
        self._permissions = permissions
        self._clock = clock

    async def register(
        self,
        message_id: str,
        *,
        username: str,
        password: str,
        display_name: str,
        client: ClientDetails,
    ) -> IssuedTokens:
        """Create an account and its first session (a replay answers the first reply)."""
        async with self._uow() as uow:
            stored = await uow.inbox.reply_of(message_id)
        if stored is not None:
            return decode_tokens(stored)
        check_username(username)
        check_password(password, username=username)
        password_hash = await self._hasher.hash_async(password)
        now = self._clock()
        account = Account(
            user_id=str(uuid.uuid4()),
            username=username,
            password_hash=password_hash,
            roles=DEFAULT_ROLES,
            created_at=now,
            password_changed_at=now,
        )
        async with self._uow() as uow:
            await uow.accounts.add(account)
            tokens = await self._sessions.open(account, client)
            await uow.inbox.record(message_id, encode_tokens(tokens))
            uow.events.append(
                AccountRegistered(
                    user_id=account.user_id,
                    username=account.username,
                    display_name=display_name,
                    roles=account.roles,
                )
            )
            await uow.commit()
        return tokens

    async def change_password(
        self,
        message_id: str,
        *,
        user_id: str,
        session_id: str,
        old: str,
        new: str,
        client: ClientDetails | None = None,
    ) -> None:
        """Check the old password, store the new one, end every other session of the user.

        The check spends the same failure budget as a login of the account from the client's
        address: a stolen session cannot be used to guess the password at leisure.
        """
        async with self._uow() as uow:
            if await uow.inbox.reply_of(message_id) is not None:
                return
            account = await uow.accounts.by_id(user_id)
        if account is None:
            raise AccountNotFound("no such account")
        key, address = normalize_username(account.username), client.address if client else None
        throttle = await self._guard.reserve(key, address)
        if not throttle.allowed:
            raise LoginThrottled(throttle.retry_after)
        ok = await self._hasher.verify_async(account.password_hash, old)
        throttle = await self._guard.settle(key, address, ok=ok)
        if not ok:
            if not throttle.allowed:
                raise LoginThrottled(throttle.retry_after)
            raise InvalidCredentials("the current password is wrong")
        check_password(new, username=account.username)
        new_hash = await self._hasher.hash_async(new)
        # The other sessions end first: a crash before the commit below leaves the message
        # unrecorded, so the retry runs the whole change again; after it, nothing is left to do.
        await self._sessions.revoke(user_id, None, keep=session_id, reason="password_changed")
        async with self._uow() as uow:
            await uow.accounts.save(account.with_password(new_hash, now=self._clock()))
            await uow.inbox.record(message_id)
            uow.events.append(PasswordChanged(user_id=user_id))
            await uow.commit()

    async def set_roles(
        self, message_id: str, *, actor_id: str, user_id: str, roles: tuple[str, ...]
    ) -> None:
        """Give ``user_id`` exactly ``roles``; the actor needs ``accounts.manage_roles``."""
        if not await self._permissions.check(actor_id, "accounts.manage_roles"):
            raise Forbidden("changing roles needs the accounts.manage_roles permission")
        async with self._uow() as uow:
            if await uow.inbox.reply_of(message_id) is not None:
                return
            account = await uow.accounts.by_id(user_id)
            if account is None:
                raise AccountNotFound("no such account")
            changed = account.with_roles(roles)
            await uow.accounts.save(changed)
            await uow.inbox.record(message_id)
            uow.events.append(RoleChanged(user_id=user_id, roles=changed.roles))
            await uow.commit()
            # Before the block ends, so role_changed goes out only once the cached grants are gone.
            await self._permissions.forget(user_id)
