"""AES-GCM encryption of session data under named keys, so keys rotate without logging anyone out.

A sealed value is ``0x01 | len(key id) | key id | 12-byte nonce | ciphertext+tag``. The associated
data binds the format version, the key id and the session (its handle, a hash of its id), so a
ciphertext copied onto another session (or relabelled with another key id) fails to open.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = 1
_NONCE = 12
_AAD_PREFIX = b"parley-session/v1\x00"


class SessionError(Exception):
    """Root of the session errors."""


class SessionCryptoError(SessionError):
    """A sealed value could not be opened: tampered, truncated, foreign or under an unknown key."""


class Keyring:
    """Named AES keys (16, 24 or 32 bytes); new values are sealed with ``current``.

    Old keys stay in the ring while sessions sealed with them may still live (the maximum session
    lifetime after a rotation), then are dropped.
    """

    def __init__(
        self, keys: Mapping[str, bytes], *, current: str, context: bytes = _AAD_PREFIX
    ) -> None:
        # ``context`` opens the associated data: values sealed for one use (sessions, transit)
        # never open as another, even under the same key.
        self._context = context
        if current not in keys:
            raise ValueError(f"current key id {current!r} is not in the keyring")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            raw = key_id.encode()
            if not 1 <= len(raw) <= 255:
                raise ValueError(f"key id must be 1..255 bytes: {key_id!r}")
            if len(key) not in (16, 24, 32):
                raise ValueError(f"key {key_id!r} must be 16, 24 or 32 bytes, not {len(key)}")
            self._ciphers[key_id] = AESGCM(key)
        self.current = current

    @classmethod
    def parse(
        cls, text: str, *, current: str | None = None, context: bytes = _AAD_PREFIX
    ) -> Keyring:
        """Build from ``"id1:<base64url key>,id2:<base64url key>"`` (settings / secret files).

        ``current`` defaults to the last key listed, so a rotation appends a key.
        """
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise ValueError("each key must look like <id>:<base64url key>")
            try:
                keys[key_id] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError) as e:
                raise ValueError(f"key {key_id!r} is not base64url") from e
        if not keys:
            raise ValueError("the keyring is empty")
        return cls(keys, current=current or list(keys)[-1], context=context)

    @staticmethod
    def generate_key() -> str:
        """A new random 256-bit key, base64url-encoded for :meth:`parse`."""
        return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id that can open values."""
        return frozenset(self._ciphers)

    def seal(self, plaintext: bytes, *, binding: str) -> bytes:
        """Encrypt with the current key, bound to ``binding`` (the session's handle)."""
        key_id = self.current.encode()
        nonce = os.urandom(_NONCE)
        header = bytes((_VERSION, len(key_id))) + key_id
        sealed = self._ciphers[self.current].encrypt(
            nonce, plaintext, self._context + header + binding.encode()
        )
        return header + nonce + sealed

    def key_id_of(self, value: bytes) -> str:
        """The key id a sealed value names (not verified until :meth:`open`)."""
        return self._split(value)[1]

    def open(self, value: bytes, *, binding: str) -> bytes:
        """Decrypt ``value`` sealed for ``binding``, else raise :class:`SessionCryptoError`."""
        header, key_id, nonce, sealed = self._split(value)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SessionCryptoError(f"unknown key id {key_id!r}")
        try:
            return cipher.decrypt(nonce, sealed, self._context + header + binding.encode())
        except InvalidTag as e:
            raise SessionCryptoError("authentication failed") from e

    @staticmethod
    def _split(value: bytes) -> tuple[bytes, str, bytes, bytes]:
        if len(value) < 2 or value[0] != _VERSION:
            raise SessionCryptoError("not a sealed session value")
        end = 2 + value[1]
        if len(value) < end + _NONCE + 16:
            raise SessionCryptoError("sealed value is truncated")
        try:
            key_id = value[2:end].decode()
        except UnicodeDecodeError as e:
            raise SessionCryptoError("key id is not text") from e
        return value[:end], key_id, value[end : end + _NONCE], value[end + _NONCE :]
