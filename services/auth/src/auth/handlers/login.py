"""Login: password check behind failure budgets per (username, address), address and username.

An unknown username costs the same as a wrong password: a dummy Argon2 verify, the same failure
counting, the same ``invalid credentials`` answer. So neither the reply nor its timing tells an
attacker whether a username exists (registration does, by design: a username is public).
"""

from __future__ import annotations

import logging

from auth.crypto.passwords import PasswordHasher
from auth.domain.accounts import normalize_username
from auth.domain.errors import InvalidCredentials, LoginThrottled
from auth.domain.sessions import ClientDetails, IssuedTokens
from auth.handlers.replays import decode_tokens, encode_tokens
from auth.handlers.sessions import SessionService
from auth.store.protocols import LoginGuard, UnitOfWorkFactory

log = logging.getLogger(__name__)


class LoginService:
    """Opens sessions for correct credentials; counts and throttles failures."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        guard: LoginGuard,
        sessions: SessionService,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._guard = guard
        self._sessions = sessions

    async def login(
        self, message_id: str, *, username: str, password: str, client: ClientDetails
    ) -> IssuedTokens:
        """Tokens for a new session, or InvalidCredentials / LoginThrottled."""
        key = normalize_username(username)
        async with self._uow() as uow:
            stored = await uow.inbox.reply_of(message_id)
            account = None if stored is not None else await uow.accounts.by_username(key)
        if stored is not None:
            return decode_tokens(stored)
        throttle = await self._guard.reserve(key, client.address)
        if not throttle.allowed:
            raise LoginThrottled(throttle.retry_after)
        if account is None:
            await self._hasher.verify_unknown_async(password)
            ok = False
        else:
            ok = await self._hasher.verify_async(account.password_hash, password)
        throttle = await self._guard.settle(key, client.address, ok=ok)
        if account is None or not ok:
            log.info("failed login (throttled: %s)", not throttle.allowed)
            if not throttle.allowed:
                raise LoginThrottled(throttle.retry_after)
            raise InvalidCredentials("wrong username or password")
        async with self._uow() as uow:
            if self._hasher.needs_rehash(account.password_hash):
                rehashed = await self._hasher.hash_async(password)
                account = account.rehashed(rehashed)
                await uow.accounts.save(account)
            tokens = await self._sessions.open(account, client)
            await uow.inbox.record(message_id, encode_tokens(tokens))
            await uow.commit()
        return tokens
