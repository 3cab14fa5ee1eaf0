"""Sealing secrets at rest (AES-256-GCM) under sub-keys derived from the key-encryption key.

One 32-byte key-encryption key (``AUTH_KEY_ENCRYPTION_KEY``) seals everything the auth service
keeps secret outside memory: signing private keys, stored command replies, session data. Each use
gets its own sub-key through HKDF-SHA256 with a distinct ``purpose``, so a ciphertext of one kind
can never be opened as another, and the associated data binds each value to its row.
"""

from __future__ import annotations

import base64
import binascii
import os

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


def derive(master: bytes, purpose: str) -> bytes:
    """The 32-byte sub-key of ``master`` for ``purpose``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(master)


class Sealer:
    """AES-GCM with one sub-key: ``seal(plain, binding)`` / ``open(sealed, binding)``."""

    def __init__(self, master: bytes, *, purpose: str) -> None:
        self._aead = AESGCM(derive(master, purpose))

    def seal(self, plaintext: bytes, *, binding: str) -> bytes:
        """``nonce | ciphertext+tag``, bound to ``binding`` (e.g. the row's id)."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, binding.encode())

    def open(self, sealed: bytes, *, binding: str) -> bytes:
        """The plaintext, or :class:`SealingError`."""
        if len(sealed) < _NONCE + 16:
            raise SealingError("sealed value is truncated")
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], binding.encode())
        except InvalidTag as e:
            raise SealingError("authentication failed") from e
