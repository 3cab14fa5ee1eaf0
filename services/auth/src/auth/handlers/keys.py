"""Signing keys: the active key signs, retired keys verify until their tokens have expired.

Rotation makes a new key active and retires the old one with ``not_after = now + token lifetime
+ leeway``, so every token it signed can still be verified until it expires anyway. Every instance
keeps the key set in memory and reloads it from the database periodically and whenever a token
names a key id it does not know (another instance rotated), at most once per ``reload_every``.
A rotation and its ``signing_keys_rotated`` event are committed in one transaction. Instances
decide a due rotation under one fleet-wide lock (``exclusive``) and look again once they hold it,
so instances starting together rotate once, not once each.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from auth.crypto.tokens import AccessClaims, SigningKey, TokenCodec
from auth.domain.errors import InvalidToken
from auth.domain.events import PublicJwk, SigningKeysRotated
from auth.handlers.ports import Clock, utc_now
from auth.store.protocols import UnitOfWorkFactory

log = logging.getLogger(__name__)


class SigningKeys:
    """The key set of this instance, and rotation."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        codec: TokenCodec,
        rotate_after: float,
        reload_every: float = 5.0,
        clock: Clock = utc_now,
        exclusive: Callable[[], AbstractAsyncContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self._uow = uow
        self._exclusive = exclusive
        self.codec = codec
        self.rotate_after = timedelta(seconds=rotate_after)
        self._reload_every = timedelta(seconds=reload_every)
        self._clock = clock
        self._keys: list[SigningKey] = []
        self._loaded_at: datetime | None = None

    async def reload(self) -> None:
        """Read the key set from the database."""
        async with self._uow() as uow:
            self._keys = await uow.signing_keys.all()
        self._loaded_at = self._clock()

    async def ensure_active(self) -> None:
        """Load the keys; rotate when none is active or the active one is older than allowed."""
        await self.reload()
        if not self._due():
            return
        async with self._exclusive():
            await self.reload()  # another instance may have rotated while this one waited
            if self._due():
                await self.rotate()

    def _due(self) -> bool:
        active = self._active_or_none()
        return active is None or self._clock() - active.created_at >= self.rotate_after

    async def rotate(self) -> SigningKey:
        """Make a new key active, retire the others, drop keys no token can need; announce it."""
        now = self._clock()
        key = SigningKey.generate(now=now)
        not_after = now + timedelta(seconds=self.codec.lifetime + self.codec.leeway + 60)
        async with self._uow() as uow:
            store = uow.signing_keys
            for old in await store.all():
                if old.retired_at is None:
                    await store.retire(old.kid, retired_at=now, not_after=not_after)
            await store.add(key)
            await store.purge(before=now)
            keys = await store.all()
            jwks = self._public_jwks(keys)
            uow.events.append(SigningKeysRotated(keys=tuple(jwks)))
            await uow.commit()
            # In use before the event goes out (when the block ends), as the event announces.
            self._keys, self._loaded_at = keys, self._clock()
        log.info("signing key rotated: %s is active", key.kid)
        return key

    def _active_or_none(self) -> SigningKey | None:
        return _active_of(self._keys)

    def active(self) -> SigningKey:
        """The key that signs new tokens."""
        key = self._active_or_none()
        if key is None:
            raise RuntimeError("no active signing key: call ensure_active() at start-up")
        return key

    def verification_keys(self) -> list[SigningKey]:
        """Keys that may verify a token now: the active first, then retired-but-valid ones."""
        return self._verification(self._keys)

    def _verification(self, keys: list[SigningKey]) -> list[SigningKey]:
        now = self._clock()
        active = _active_of(keys)
        rest = [k for k in keys if k is not active and k.verifies_at(now)]
        return ([active] if active else []) + sorted(rest, key=lambda k: k.created_at, reverse=True)

    def public_jwks(self) -> list[PublicJwk]:
        """:meth:`verification_keys` as public JWK facts."""
        return self._public_jwks(self._keys)

    def _public_jwks(self, keys: list[SigningKey]) -> list[PublicJwk]:
        return [
            PublicJwk(kid=k.kid, x=k.x, not_after=k.not_after) for k in self._verification(keys)
        ]

    def issue(self, *, user_id: str, session_id: str, roles: tuple[str, ...]) -> str:
        """A new access token signed by the active key."""
        return self.codec.issue(
            self.active(), user_id=user_id, session_id=session_id, roles=roles, now=self._clock()
        )

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid access token, else :class:`InvalidToken`."""
        try:
            return self._verify_now(token)
        except InvalidToken:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._reload_every:
                raise
        await self.reload()  # another instance may have rotated: look again, once
        return self._verify_now(token)

    def _verify_now(self, token: str) -> AccessClaims:
        keys = {k.kid: k for k in self.verification_keys()}
        return self.codec.verify(token, keys, now=self._clock())


def _active_of(keys: list[SigningKey]) -> SigningKey | None:
    live = [k for k in keys if k.retired_at is None and k.private is not None]
    return max(live, key=lambda k: k.created_at) if live else None
