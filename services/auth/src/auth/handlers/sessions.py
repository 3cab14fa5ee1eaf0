"""Sessions: opening one per login, refresh with rotation and reuse detection, revocation."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

from auth.domain.accounts import Account
from auth.domain.errors import InvalidRefreshToken, RefreshTokenReused, SessionNotFound
from auth.domain.events import RevocationReason, SessionRevoked
from auth.domain.sessions import (
    ClientDetails,
    IssuedTokens,
    RefreshFamily,
    RefreshToken,
    SessionSummary,
    token_hash,
)
from auth.handlers.keys import SigningKeys
from auth.handlers.ports import Clock, utc_now
from auth.handlers.replays import Replays, decode_tokens, encode_tokens
from auth.store.protocols import SessionRepository, StoredSession, UnitOfWorkFactory

log = logging.getLogger(__name__)


class SessionService:
    """Sessions of users: issue, refresh, list, revoke."""

    def __init__(
        self,
        sessions: SessionRepository,
        keys: SigningKeys,
        uow: UnitOfWorkFactory,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._uow = uow
        self._clock = clock
        self._replays = Replays(uow)

    async def open(self, account: Account, client: ClientDetails) -> IssuedTokens:
        """Start a session for ``account`` and issue its first token pair."""
        secret = secrets.token_urlsafe(32)
        family = RefreshFamily(
            token_hash=token_hash(secret), last_used_at=time.time(), client=client
        )
        session = await self._sessions.create(account.user_id, family)
        assert session.secret_id is not None
        return self._tokens(account, session, secret)

    def _tokens(self, account: Account, session: StoredSession, secret: str) -> IssuedTokens:
        assert session.secret_id is not None
        access = self._keys.issue(
            user_id=account.user_id, session_id=session.handle, roles=account.roles
        )
        return IssuedTokens(
            user_id=account.user_id,
            session_id=session.handle,
            access_token=access,
            refresh_token=str(RefreshToken(session_secret=session.secret_id, secret=secret)),
            expires_in=self._keys.codec.lifetime,
        )

    async def refresh(self, presented: str, *, message_id: str | None = None) -> IssuedTokens:
        """Rotate a refresh token; a reused one revokes the session (its whole family).

        With ``message_id``, a replay of the same command answers the first reply instead of
        presenting the (now rotated) token again, which would look like reuse.
        """
        if message_id is not None:
            stored = await self._replays.stored(message_id)
            if stored is not None:
                return decode_tokens(stored)
        tokens = await self._rotate(presented)
        if message_id is not None:
            await self._replays.remember(message_id, encode_tokens(tokens))
        return tokens

    async def _rotate(self, presented: str) -> IssuedTokens:
        token = RefreshToken.parse(presented)
        found = await self._sessions.get(token.session_secret, touch=False)
        if found is None:
            raise InvalidRefreshToken("unknown or expired session")
        async with self._sessions.exclusive(found.handle):
            # Read again under the lock, sliding the idle expiry: the renewal of the session.
            session = await self._sessions.get(token.session_secret, touch=True)
            if session is None:
                raise InvalidRefreshToken("unknown or expired session")
            secret = secrets.token_urlsafe(32)
            try:
                family = session.family.rotate(
                    token_hash(token.secret), token_hash(secret), now=time.time()
                )
            except RefreshTokenReused:
                log.warning("refresh token reuse on session %s: revoking it", session.handle)
                await self._end(session.user_id, session.handle, "token_reuse")
                raise
            if not await self._sessions.replace(token.session_secret, family):
                raise InvalidRefreshToken("the session ended")
        async with self._uow() as uow:
            account = await uow.accounts.by_id(session.user_id)
        if account is None:
            await self._end(session.user_id, session.handle, "revoked")
            raise InvalidRefreshToken("the account is gone")
        return self._tokens(account, session, secret)

    async def list(self, user_id: str) -> list[SessionSummary]:
        """The live sessions of ``user_id``, oldest first."""
        return [
            SessionSummary(
                session_id=s.handle,
                created_at=s.created_at,
                last_used_at=s.family.last_used_at or s.created_at,
                client=s.family.client,
            )
            for s in await self._sessions.list(user_id)
        ]

    async def logout(self, user_id: str, session_id: str) -> None:
        """End the caller's own session (idempotent: an ended session is fine)."""
        await self._end(user_id, session_id, "logout")

    async def revoke(
        self,
        user_id: str,
        session_id: str | None,
        *,
        keep: str | None = None,
        reason: RevocationReason = "revoked",
    ) -> int:
        """Revoke one session (``SessionNotFound`` when not live) or all but ``keep``."""
        if session_id is not None:
            if not await self._end(user_id, session_id, reason):
                raise SessionNotFound("no such live session")
            return 1
        ended = 0
        for session in await self._sessions.list(user_id):
            if session.handle != keep and await self._end(user_id, session.handle, reason):
                ended += 1
        return ended

    async def _end(self, user_id: str, handle: str, reason: RevocationReason) -> bool:
        # Sessions live in Redis, so there is no database change for the event to join. The
        # event is the decision: it is committed (to the outbox) first, then carried out in Redis,
        # then appended. A process that dies after the commit leaves the row to the relay, and
        # auth's own ``auth.revocations`` group carries out every appended revocation again
        # (:meth:`enforce`), so the session ends and gateways hear of it either way. One that
        # dies before the commit has changed nothing, and its retry starts over.
        if not await self._sessions.live(user_id, handle):
            return False
        async with self._uow() as uow:
            # Gateways refuse this session's access tokens until the last of them expires.
            expire = self._clock() + timedelta(seconds=self._keys.codec.lifetime)
            uow.events.append(
                SessionRevoked(
                    user_id=user_id, session_id=handle, reason=reason, tokens_expire_at=expire
                )
            )
            await uow.commit()
            await self._sessions.revoke(user_id, handle)
        return True

    async def enforce(self, user_id: str, handle: str) -> None:
        """Carry out an announced revocation (a no-op when the session has already ended)."""
        await self._sessions.revoke(user_id, handle)
