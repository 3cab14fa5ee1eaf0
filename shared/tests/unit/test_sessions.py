"""The session keyring: sealing, rotation and refusal of anything not sealed for the session."""

from __future__ import annotations

import os

import pytest

from shared.sessions import Keyring, SessionCryptoError

pytestmark = pytest.mark.unit


def test_a_sealed_value_opens_for_its_own_binding_only() -> None:
    ring = Keyring({"k1": os.urandom(32)}, current="k1")
    sealed = ring.seal(b"secret", binding="session-a")
    assert ring.open(sealed, binding="session-a") == b"secret"
    with pytest.raises(SessionCryptoError):
        ring.open(sealed, binding="session-b")


def test_sealing_the_same_value_twice_gives_different_ciphertexts() -> None:
    ring = Keyring({"k1": os.urandom(32)}, current="k1")
    assert ring.seal(b"x", binding="s") != ring.seal(b"x", binding="s")


def test_new_values_use_the_current_key_and_old_ones_still_open() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed_old = Keyring({"a": old}, current="a").seal(b"v", binding="s")
    ring = Keyring({"a": old, "b": new}, current="b")
    assert ring.open(sealed_old, binding="s") == b"v"
    assert ring.key_id_of(ring.seal(b"v", binding="s")) == "b"


def test_relabelling_the_key_id_breaks_the_seal() -> None:
    key = os.urandom(32)
    ring = Keyring({"a": key, "b": key}, current="a")
    sealed = bytearray(ring.seal(b"v", binding="s"))
    sealed[2] = ord("b")
    with pytest.raises(SessionCryptoError):
        ring.open(bytes(sealed), binding="s")


@pytest.mark.parametrize("value", [b"", b"\x01", b"\x02\x01a" + bytes(40), b"\x01\x01a" + bytes(5)])
def test_garbage_is_refused_with_the_typed_error(value: bytes) -> None:
    ring = Keyring({"a": os.urandom(32)}, current="a")
    with pytest.raises(SessionCryptoError):
        ring.open(value, binding="s")


def test_parse_reads_ids_and_base64url_keys_and_defaults_to_the_last() -> None:
    text = f"old:{Keyring.generate_key()}, new:{Keyring.generate_key()}"
    ring = Keyring.parse(text)
    assert ring.current == "new"
    assert ring.key_ids == {"old", "new"}


@pytest.mark.parametrize("text", ["", "nokey", "k:" + "A" * 10])
def test_parse_refuses_bad_keyrings(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        Keyring.parse(text)
