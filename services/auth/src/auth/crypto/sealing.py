"""Sealing secrets at rest (AES-256-GCM) under sub-keys derived from the key-encryption key.

One 32-byte key-encryption key (``AUTH_KEY_ENCRYPTION_KEY``) seals everything the auth service
keeps secret outside memory: signing private keys, stored command replies, session data. Each use
gets its own sub-key through HKDF-SHA256 with a distinct ``purpose``, so a ciphertext of one kind
can never be opened as another, and the associated data binds each value to its row.

Rotation: a new key seals from the moment it is configured; the previous ones
(``AUTH_OLD_KEY_ENCRYPTION_KEYS``) still open what they sealed until nothing sealed under them
lives any more (docs/operations.md, "Rotating the key-encryption key").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class SealingError(Exception):
    """A sealed value could not be opened (tampered, truncated or under another key)."""


def parse_key(text: str) -> bytes:
    """A 32-byte key from its base64url text (padding optional); ValueError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError("the key-encryption key must be base64url") from e
    if len(raw) != 32:
        raise ValueError(f"the key-encryption key must be 32 bytes, not {len(raw)}")
    return raw


def new_key() -> str:
    """A fresh random 32-byte key as base64url text."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def fingerprint(master: bytes) -> str:
    """A short public name of a key (for key ids and logs; reveals nothing of the key)."""
    return hashlib.sha256(b"parley-kek-id\x00" + master).hexdigest()[:12]


def derive(master: bytes, purpose: str) -> bytes:
    """The 32-byte sub-key of ``master`` for ``purpose``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(master)


class Sealer:
    """AES-GCM with one sub-key: ``seal(plain, binding)`` / ``open(sealed, binding)``.

    ``old`` keys only open: a value sealed before a rotation opens under the key that sealed it.
    """

    def __init__(self, master: bytes, *, purpose: str, old: Sequence[bytes] = ()) -> None:
        self._aeads = [AESGCM(derive(key, purpose)) for key in (master, *old)]

    def seal(self, plaintext: bytes, *, binding: str) -> bytes:
        """``nonce | ciphertext+tag``, bound to ``binding`` (e.g. the row's id)."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aeads[0].encrypt(nonce, plaintext, binding.encode())

    def open(self, sealed: bytes, *, binding: str) -> bytes:
        """The plaintext, or :class:`SealingError`."""
        if len(sealed) < _NONCE + 16:
            raise SealingError("sealed value is truncated")
        for aead in self._aeads:  # the current key first: old ones only for older values
            try:
                return aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], binding.encode())
            except InvalidTag:
                continue
        raise SealingError("authentication failed under every key-encryption key")
