"""Sealed fields: what a message's SECRETS become on the way, and what refuses to open."""

from __future__ import annotations

import msgspec
import pytest

from contracts.auth import ChangePassword, Login, TokenPair
from shared.sessions import Keyring, SessionCryptoError
from shared.transit import PREFIX, Transit, TransitError

pytestmark = pytest.mark.unit


def _transit(*ids: str) -> Transit:
    return Transit.parse(",".join(f"{i}:{Keyring.generate_key()}" for i in ids))


def test_secret_fields_are_sealed_and_open_again_and_the_rest_is_untouched() -> None:
    transit = _transit("t1")
    sealed = transit.seal(Login(username="ann", password="correct horse battery"))
    assert sealed.username == "ann"
    assert sealed.password.startswith(PREFIX) and "correct horse" not in sealed.password
    assert b"correct horse" not in msgspec.msgpack.encode(sealed)
    assert transit.open(sealed) == Login(username="ann", password="correct horse battery")


def test_a_clear_secret_is_refused() -> None:
    with pytest.raises(TransitError, match="not sealed"):
        _transit("t1").open(Login(username="ann", password="correct horse battery"))


def test_a_sealed_value_moved_to_another_field_or_message_does_not_open() -> None:
    transit = _transit("t1")
    change = transit.seal(
        ChangePassword(user_id="u1", session_id="s1", old_password="old", new_password="new")
    )
    swapped = msgspec.structs.replace(change, old_password=change.new_password)
    with pytest.raises(TransitError):
        transit.open(swapped)
    with pytest.raises(TransitError):
        transit.open(Login(username="ann", password=change.old_password))


def test_a_foreign_key_does_not_open_and_after_a_rotation_the_old_key_still_does() -> None:
    pair = TokenPair(
        user_id="u1", session_id="s1", access_token="a.b.c", refresh_token="r", expires_in=600
    )
    k1, k2 = Keyring.generate_key(), Keyring.generate_key()
    old = Transit.parse(f"t1:{k1}")
    with pytest.raises(TransitError):
        _transit("t1").open(old.seal(pair))
    rotated = Transit.parse(f"t1:{k1},t2:{k2}")  # the last one seals
    assert rotated.open(old.seal(pair)) == pair
    with pytest.raises(TransitError):
        old.open(rotated.seal(pair))  # sealed under t2, which the old ring does not have


def test_transit_values_never_open_as_session_values_under_the_same_key() -> None:
    key = Keyring.generate_key()
    sealed = Transit.parse(f"k:{key}").keyring.seal(b"x", binding="b")
    with pytest.raises(SessionCryptoError):
        Keyring.parse(f"k:{key}").open(sealed, binding="b")
