"""Sessions and refresh-token families: the rotation and reuse-detection rule.

A session is one login on one device. Its refresh tokens form a *family*: each refresh hands out a
new token and retires the presented one. Only hashes are kept (SHA-256 of the token's secret part;
the secret has 256 random bits, so a fast hash is enough, unlike for passwords). Presenting a
retired token means two parties hold the family (the token leaked): the whole family is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace

from auth.domain.errors import InvalidRefreshToken, RefreshTokenReused

# How many retired token hashes a family remembers for reuse detection. A reuse older than this
# is still refused (the token is unknown), only without revoking the family.
RETIRED_KEPT = 32


def token_hash(secret: str) -> str:
    """The stored form of a refresh token's secret part."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientDetails:
    """What the gateway told us about the device (for the session list; never for decisions)."""

    address: str | None = None
    device: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """The state of one session's token family (stored encrypted in the session store)."""

    token_hash: str
    generation: int = 0
    retired: tuple[str, ...] = ()
    last_used_at: float = 0.0
    client: ClientDetails = field(default_factory=ClientDetails)

    def rotate(self, presented: str, new_hash: str, *, now: float) -> RefreshFamily:
        """The family after a refresh with the token whose hash is ``presented``.

        Raises :class:`RefreshTokenReused` for a retired token (the caller revokes the family)
        and :class:`InvalidRefreshToken` for a token this family never issued.
        """
        if hmac.compare_digest(presented, self.token_hash):
            retired = (self.token_hash, *self.retired)[:RETIRED_KEPT]
            return replace(
                self,
                token_hash=new_hash,
                generation=self.generation + 1,
                retired=retired,
                last_used_at=now,
            )
        if any(hmac.compare_digest(presented, old) for old in self.retired):
            raise RefreshTokenReused("a rotated refresh token was presented again")
        raise InvalidRefreshToken("unknown refresh token")


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token's two parts: the session store's secret id and the rotating secret.

    On the wire it is ``<session secret id>.<secret>``; the session id names the family, the secret
    proves the holder has the latest token of it.
    """

    session_secret: str
    secret: str

    def __str__(self) -> str:
        return f"{self.session_secret}.{self.secret}"

    @classmethod
    def parse(cls, text: str) -> RefreshToken:
        """Split a presented token; :class:`InvalidRefreshToken` when malformed."""
        session_secret, sep, secret = text.rpartition(".")
        if not sep or not session_secret or len(secret) < 32:
            raise InvalidRefreshToken("malformed refresh token")
        return cls(session_secret=session_secret, secret=secret)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """What a login, registration or refresh hands to the client."""

    user_id: str
    session_id: str
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One live session as listed to its owner (``session_id`` is the non-secret handle)."""

    session_id: str
    created_at: float
    last_used_at: float
    client: ClientDetails
