"""Local token verification: what auth signs passes; forged, expired, none-alg, wrong-kid fail."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.auth import PublicKey, PublicKeys
from contracts.base import Command
from gateway.handlers.backend import Backend, RequestContext
from gateway.handlers.tokens import TokenError, TokenExpiredError, TokenVerifier

pytestmark = pytest.mark.unit


def _jwk(kid: str, private: Ed25519PrivateKey) -> PublicKey:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return PublicKey(kid=kid, kty="OKP", alg="EdDSA", crv="Ed25519", x=x)


def _token(private: Ed25519PrivateKey, kid: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "parley-auth",
        "aud": "parley",
        "sub": "u1",
        "sid": "s1",
        "roles": ["user"],
        "iat": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(8),
    }
    claims.update(overrides)
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})


class FakeBackend(Backend):
    """Answers auth.get_public_keys with a settable key list and counts the fetches."""

    def __init__(self, keys: list[PublicKey]) -> None:
        self.keys = keys
        self.fetches = 0

    async def call(
        self,
        command: Command,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the interface of Backend.call
    ) -> Any:
        self.fetches += 1
        return PublicKeys(keys=list(self.keys))


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def verifier(key: Ed25519PrivateKey) -> TokenVerifier:
    v = TokenVerifier(FakeBackend([_jwk("k1", key)]), refresh_interval=60.0)
    await v.start()
    return v


async def test_a_token_signed_by_a_published_key_verifies(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    claims = await verifier.verify(_token(key, "k1"))
    assert (claims.user_id, claims.session_id, claims.roles) == ("u1", "s1", ("user",))


async def test_a_forged_signature_is_refused(verifier: TokenVerifier) -> None:
    forged = _token(Ed25519PrivateKey.generate(), "k1")
    with pytest.raises(TokenError) as caught:
        await verifier.verify(forged)
    assert caught.value.code == "unauthenticated"


async def test_an_expired_token_says_refresh(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    old = int(time.time()) - 3600
    with pytest.raises(TokenExpiredError) as caught:
        await verifier.verify(_token(key, "k1", iat=old, exp=old + 600))
    assert caught.value.code == "token_expired"
    assert caught.value.status == 401


async def test_alg_none_is_refused_before_any_key(verifier: TokenVerifier) -> None:
    unsigned = jwt.encode(
        {"sub": "u1", "sid": "s1", "aud": "parley", "iss": "parley-auth"},
        key=None,  # type: ignore[arg-type]  # "none" takes no key
        algorithm="none",
        headers={"kid": "k1"},
    )
    with pytest.raises(TokenError) as caught:
        await verifier.verify(unsigned)
    assert type(caught.value) is TokenError


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    public_x = _jwk("k1", key).x.encode()
    confused = jwt.encode({"sub": "u1"}, public_x, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(TokenError):
        await verifier.verify(confused)


async def test_an_unknown_kid_refetches_keys_at_most_once_per_interval(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    backend = verifier._backend
    assert isinstance(backend, FakeBackend)
    before = backend.fetches
    for _ in range(5):
        with pytest.raises(TokenError):
            await verifier.verify(_token(key, "no-such-kid"))
    assert backend.fetches == before  # fetched at start, within the refresh interval


async def test_a_rotated_key_is_found_by_refetching_on_its_kid(key: Ed25519PrivateKey) -> None:
    backend = FakeBackend([_jwk("k1", key)])
    verifier = TokenVerifier(backend, refresh_interval=0.0)
    await verifier.start()
    new_key = Ed25519PrivateKey.generate()
    backend.keys = [_jwk("k2", new_key), _jwk("k1", key)]
    claims = await verifier.verify(_token(new_key, "k2"))
    assert claims.kid == "k2"


async def test_the_wrong_audience_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    with pytest.raises(TokenError):
        await verifier.verify(_token(key, "k1", aud="someone-else"))


async def test_a_token_missing_the_session_claim_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    token = _token(key, "k1")
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["sid"]
    with pytest.raises(TokenError):
        await verifier.verify(jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k1"}))


async def test_a_revoked_session_is_refused_at_once_and_callbacks_hear_of_it(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    heard: list[tuple[str, str]] = []

    async def on_revoked(user_id: str, session_id: str) -> None:
        heard.append((user_id, session_id))

    verifier.on_revoked(on_revoked)
    token = _token(key, "k1")
    await verifier.verify(token)
    await verifier.revoke("u1", "s1", tokens_expire_at=time.time() + 600)
    with pytest.raises(TokenError):
        await verifier.verify(token)
    assert heard == [("u1", "s1")]
    assert not verifier.is_revoked("another-session")


async def test_a_verified_token_is_remembered_so_its_signature_is_checked_once(
    verifier: TokenVerifier, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.handlers import tokens

    decoded: list[str] = []
    real_decode = tokens.jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting_decode)
    token = _token(key, "k1")
    first, second = await verifier.verify(token), await verifier.verify(token)
    assert first == second and len(decoded) == 1
    await verifier.verify(_token(key, "k1"))  # another token: checked in full
    assert len(decoded) == 2


async def test_a_remembered_token_of_a_key_no_longer_trusted_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    token = _token(key, "k1")
    await verifier.verify(token)
    verifier.set_keys([_jwk("k2", Ed25519PrivateKey.generate())])  # k1 rotated out
    with pytest.raises(TokenError):
        await verifier.verify(token)


async def test_a_remembered_token_that_expires_says_refresh(key: Ed25519PrivateKey) -> None:
    verifier = TokenVerifier(FakeBackend([_jwk("k1", key)]), leeway=0.5, refresh_interval=60.0)
    await verifier.start()
    expires = int(time.time()) + 1
    token = _token(key, "k1", exp=expires)
    await verifier.verify(token)
    await asyncio.sleep(max(0.0, expires + 0.6 - time.time()))  # past exp + leeway
    with pytest.raises(TokenExpiredError):
        await verifier.verify(token)
