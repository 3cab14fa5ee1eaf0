"""Verifying access tokens locally with auth's public keys, and refusing revoked sessions.

Public API (stable; the WebSocket and GraphQL sides build on it)::

    verifier = TokenVerifier(backend, revoked=RedisRevokedSessions(...), audience="parley")
    await verifier.start()                     # fetch keys (auth.get_public_keys), load revocations
    claims = await verifier.verify(token)      # -> AccessClaims, or TokenError
    unsubscribe = verifier.on_revoked(cb)      # async cb(user_id, session_id) on each revocation
    verifier.is_revoked(session_id)            # bool
    verifier.event_handlers()                  # {SessionRevoked: ..., SigningKeysRotated: ...}

Tokens are auth's EdDSA JWTs (docs/security.md): header ``kid``; claims ``iss``, ``aud``, ``sub``
(user id), ``sid`` (session), ``roles``, ``iat``, ``exp``, ``jti``. Verification refuses, before
touching a key, any ``alg`` but the one of the key named by ``kid`` (so ``alg: none`` and algorithm
confusion fail); then signature, audience, issuer and expiry (with leeway). An expired token raises
:class:`TokenExpiredError` (code ``token_expired``: the client should refresh); any other failure
raises :class:`TokenError` (code ``unauthenticated``). The reason is for logs, not for clients.

Keys are fetched at :meth:`TokenVerifier.start`, replaced on ``auth.signing_keys_rotated`` and
refetched when a token names an unknown ``kid`` (at most once per ``refresh_interval``, one fetch
at a time, so forged kids cannot flood auth).

A token that verified is remembered (an LRU of ``verified_cache_size`` tokens, keyed by the whole
token text) until its expiry: a client sends the same token with every request for minutes, and
the signature check is the costliest step. A remembered token is still refused at once when its
session is revoked, its key is no longer trusted (rotation) or it expires.

Revocations: ``auth.session_revoked`` events (read by the gateway's per-instance consumer group, so
every instance sees every one) put the session in an in-memory set at once and in Redis (for
restarts); entries stay until the revoked session's tokens cannot verify anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final

import jwt
from cachetools import LRUCache

from contracts.auth import GetPublicKeys, PublicKey, PublicKeys, SessionRevoked, SigningKeysRotated
from contracts.base import Envelope
from gateway.domain import errors
from gateway.domain.errors import GatewayError
from gateway.handlers.backend import Backend, BackendError, RequestContext
from gateway.store.protocols import RevokedSessions

log = logging.getLogger(__name__)

__all__ = ["AccessClaims", "RevokedCallback", "TokenError", "TokenExpiredError", "TokenVerifier"]

ACCEPTED_ALGORITHMS: Final = frozenset({"EdDSA", "ES256"})
REQUIRED_CLAIMS: Final = ["exp", "iat", "sub", "sid", "aud", "iss", "jti"]

RevokedCallback = Callable[[str, str], Awaitable[None]]
"""``async def callback(user_id, session_id)``: called once per revocation event."""


class TokenError(GatewayError):
    """The token is missing, malformed, forged, of a revoked session or otherwise invalid."""

    def __init__(self, reason: str, *, code: str = errors.UNAUTHENTICATED) -> None:
        super().__init__(code, "invalid or missing access token")
        self.reason = reason


class TokenExpiredError(TokenError):
    """The token was valid but has expired: refresh it (code ``token_expired``)."""

    def __init__(self) -> None:
        super().__init__("expired", code=errors.TOKEN_EXPIRED)
        self.message = "the access token has expired; refresh it"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    session_id: str
    roles: tuple[str, ...]
    kid: str
    expires_at: float
    token_id: str


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    alg: str
    key: Any
    not_after: float | None


def _load_key(jwk: PublicKey) -> _Key:
    data = {k: v for k, v in {"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y}.items() if v}
    parsed = jwt.PyJWK.from_json(json.dumps(data), algorithm=jwk.alg)
    not_after = jwk.not_after.timestamp() if jwk.not_after else None
    return _Key(kid=jwk.kid, alg=jwk.alg, key=parsed.key, not_after=not_after)


class TokenVerifier:
    """Local access-token verification for one gateway instance."""

    def __init__(
        self,
        backend: Backend,
        *,
        revoked: RevokedSessions | None = None,
        audience: str = "parley",
        issuer: str = "parley-auth",
        leeway: float = 5.0,
        max_token_lifetime: float = 3600.0,
        refresh_interval: float = 5.0,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._backend = backend
        self._verified: LRUCache[str, AccessClaims] = LRUCache(maxsize=verified_cache_size)
        self._store = revoked
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.max_token_lifetime = max_token_lifetime
        self.refresh_interval = refresh_interval
        self._keys: dict[str, _Key] = {}
        self._revoked: dict[str, float] = {}
        self._callbacks: list[RevokedCallback] = []
        self._fetched_at = float("-inf")
        self._fetching: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Load remembered revocations and fetch the keys (a failed fetch is retried on use)."""
        if self._store is not None:
            try:
                for sid, until in (await self._store.load()).items():
                    self._revoked[sid] = max(until, self._revoked.get(sid, 0.0))
            except Exception:
                log.warning("could not load remembered revocations", exc_info=True)
        try:
            await self.refresh_keys(force=True)
        except BackendError as e:
            log.warning("could not fetch auth's public keys at start (%s); retrying on use", e)

    @property
    def kids(self) -> frozenset[str]:
        """The key ids currently trusted."""
        return frozenset(self._keys)

    def set_keys(self, keys: list[PublicKey]) -> None:
        """Trust exactly ``keys`` (from a fetch or a rotation event)."""
        loaded: dict[str, _Key] = {}
        for jwk in keys:
            try:
                loaded[jwk.kid] = _load_key(jwk)
            except (jwt.PyJWTError, ValueError) as e:
                log.warning("ignoring public key %s: %s", jwk.kid, e)
        self._keys = loaded

    async def refresh_keys(self, *, force: bool = False) -> None:
        """Fetch the keys from auth, at most once per ``refresh_interval`` unless ``force``."""
        if self._fetching is not None:
            await asyncio.shield(self._fetching)
            return
        if not force and time.monotonic() - self._fetched_at < self.refresh_interval:
            return
        self._fetched_at = time.monotonic()
        self._fetching = asyncio.create_task(self._fetch())
        try:
            await asyncio.shield(self._fetching)
        finally:
            self._fetching = None

    async def _fetch(self) -> None:
        result: PublicKeys = await self._backend.call(GetPublicKeys(), RequestContext.new())
        self.set_keys(result.keys)
        log.info("trusting %d token key(s): %s", len(self._keys), ", ".join(self._keys))

    # -- verification -----------------------------------------------------------------------

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token of a live session, else :class:`TokenError`."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError("malformed") from e
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("no kid")
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise TokenError(f"algorithm {header.get('alg')!r} refused")
        if kid not in self._keys:
            try:
                await self.refresh_keys()
            except BackendError as e:
                if not self._keys:  # nothing to verify with at all: not the client's fault
                    raise GatewayError(errors.UNAVAILABLE, "cannot verify tokens now") from e
        return self.verify_with_known_keys(token, header)

    def verify_with_known_keys(
        self, token: str, header: Mapping[str, Any] | None = None
    ) -> AccessClaims:
        """:meth:`verify` without any key fetch (the keys already held decide)."""
        try:
            header = header if header is not None else jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError("malformed") from e
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise TokenError("unknown kid")
        if header.get("alg") != key.alg:
            raise TokenError(f"algorithm {header.get('alg')!r} does not match the key")
        if key.not_after is not None and time.time() >= key.not_after:
            raise TokenError("key past not_after")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as e:
            raise TokenExpiredError() from e
        except jwt.PyJWTError as e:
            raise TokenError(type(e).__name__) from e
        sid = str(claims["sid"])
        if self.is_revoked(sid):
            raise TokenError("session revoked")
        verified = AccessClaims(
            user_id=str(claims["sub"]),
            session_id=sid,
            roles=tuple(str(r) for r in claims.get("roles", [])),
            kid=key.kid,
            expires_at=float(claims["exp"]),
            token_id=str(claims["jti"]),
        )
        self._verified[token] = verified
        return verified

    def _remembered(self, token: str) -> AccessClaims | None:
        """The claims of a token verified before, if it would still verify now (else forgotten).

        Everything that can change since the signature was checked is checked again: expiry,
        the key (still trusted, not past ``not_after``) and the session (not revoked)."""
        claims = self._verified.get(token)
        if claims is None:
            return None
        key = self._keys.get(claims.kid)
        now = time.time()
        if (
            now >= claims.expires_at + self.leeway
            or key is None
            or (key.not_after is not None and now >= key.not_after)
            or self.is_revoked(claims.session_id)
        ):
            self._verified.pop(token, None)
            return None  # the full check says why
        return claims

    # -- revocations ------------------------------------------------------------------------

    def is_revoked(self, session_id: str) -> bool:
        """Whether tokens of ``session_id`` are refused now."""
        until = self._revoked.get(session_id)
        if until is None:
            return False
        if until <= time.time():
            del self._revoked[session_id]
            return False
        return True

    def on_revoked(self, callback: RevokedCallback) -> Callable[[], None]:
        """Call ``callback(user_id, session_id)`` on every revocation; returns an unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    async def revoke(self, user_id: str, session_id: str, *, tokens_expire_at: float) -> None:
        """Refuse ``session_id`` from now on; remember it; tell the callbacks."""
        now = time.time()
        # Kept until no token of the session can verify: its own expiry, and at least one
        # longest token lifetime, in case auth's estimate and ours differ; plus the leeway.
        until = max(tokens_expire_at, now + self.max_token_lifetime) + self.leeway
        self._revoked[session_id] = max(until, self._revoked.get(session_id, 0.0))
        self._prune(now)
        if self._store is not None:
            try:
                await self._store.add(session_id, until=until)
            except Exception:
                log.warning("could not remember revocation of a session", exc_info=True)
        for callback in list(self._callbacks):
            try:
                await callback(user_id, session_id)
            except Exception:
                log.exception("a revocation callback failed")

    def _prune(self, now: float) -> None:
        for sid in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[sid]

    # -- events -----------------------------------------------------------------------------

    def event_handlers(self) -> dict[type[Any], Callable[[Any, Envelope], Awaitable[None]]]:
        """Handlers of the auth events this verifier follows, for the per-instance consumer."""
        return {SessionRevoked: self._on_session_revoked, SigningKeysRotated: self._on_rotated}

    async def _on_session_revoked(self, event: SessionRevoked, _: Envelope) -> None:
        expires = event.tokens_expire_at.astimezone(UTC).timestamp()
        await self.revoke(event.user_id, event.session_id, tokens_expire_at=expires)

    async def _on_rotated(self, event: SigningKeysRotated, _: Envelope) -> None:
        self.set_keys(event.keys)
        log.info("signing keys rotated: trusting %s", ", ".join(self._keys))
