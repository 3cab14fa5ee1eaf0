"""Sealed fields: secrets that cross Redis (streams, kept replies, channels) only encrypted.

A message class names its secret text fields in a ``SECRETS`` class variable (see
:mod:`contracts.base`). The sender seals them with :meth:`Transit.seal` before the message leaves,
the receiver opens them with :meth:`Transit.open` after it arrived; in between (a stream entry kept
for a day, AOF, RDB, backups, a reply kept for deduplication, ``MONITOR``) only
``sealed1.<base64url>`` text is seen. The cipher is AES-256-GCM under a :class:`Keyring` of named
keys shared by both ends, so a key rotates without losing a message in flight: every key in the
ring opens, the ``current`` one seals. The associated data binds each value to its class and field,
so a sealed password cannot be replayed as a token field or into another message kind.

>>> transit = Transit(Keyring.parse(settings.transit_keys.get_secret_value(), context=CONTEXT))
>>> command = transit.seal(Login(username="ann", password="correct horse"))
>>> transit.open(command).password
'correct horse'
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec
from pydantic import SecretStr

from shared.service.errors import StartupError
from shared.service.paths import state_dir
from shared.sessions.keyring import Keyring, SessionCryptoError

__all__ = [
    "CONTEXT",
    "PREFIX",
    "Transit",
    "TransitError",
    "development_keys",
    "load_transit",
    "secret_fields",
]

PREFIX = "sealed1."
"""What every sealed field value starts with (format version 1)."""
CONTEXT = b"parley-transit/v1\x00"
"""The associated-data prefix of transit values: a session key never opens them, and vice versa."""

S = TypeVar("S", bound=msgspec.Struct)
log = logging.getLogger(__name__)


class TransitError(Exception):
    """A secret field is not sealed, or does not open (tampered, foreign, unknown key)."""


def secret_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """The field names a message class declares secret (``SECRETS``), none by default."""
    names: tuple[str, ...] = getattr(cls, "SECRETS", ())
    return names


class Transit:
    """Seals and opens the ``SECRETS`` fields of msgspec messages under a shared keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @classmethod
    def parse(cls, text: str) -> Transit:
        """From ``"id1:<base64url key>,id2:<base64url key>"``; the last key listed seals."""
        return cls(Keyring.parse(text, context=CONTEXT))

    def seal(self, message: S) -> S:
        """A copy of ``message`` with every secret field sealed (the message if it has none)."""
        return _replaced(message, self._seal_field)

    def open(self, message: S) -> S:
        """A copy of ``message`` with every secret field opened; TransitError when one is not
        sealed or does not open (a secret never enters in clear, even by mistake)."""
        return _replaced(message, self._open_field)

    def _seal_field(self, value: str, binding: str) -> str:
        sealed = self.keyring.seal(value.encode(), binding=binding)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def _open_field(self, value: str, binding: str) -> str:
        if not value.startswith(PREFIX):
            raise TransitError(f"the field {binding!r} is not sealed")
        text = value[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self.keyring.open(raw, binding=binding).decode()
        except (binascii.Error, ValueError, SessionCryptoError) as e:
            raise TransitError(f"the field {binding!r} does not open: {e}") from e


def _replaced(message: S, change: Callable[[str, str], str]) -> S:
    """``message`` with ``change(value, binding)`` applied to each secret text field set."""
    fields = secret_fields(type(message))
    if not fields:
        return message
    changes = {
        name: change(value, _binding(message, name))
        for name in fields
        if isinstance(value := getattr(message, name), str)
    }
    return msgspec.structs.replace(message, **changes)


def _binding(message: msgspec.Struct, field: str) -> str:
    kind = getattr(type(message), "TYPE", None) or type(message).__name__
    return f"{kind}.{field}"


def development_keys(state: Path) -> str:
    """The development keyring text kept in ``state/transit-keys`` (made by the first caller).

    Every process of a development fleet shares the checkout's state folder, so the gateway and
    auth find the same key. Production passes the keys as a secret instead.
    """
    path = state / "transit-keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process of the fleet made it at the same moment: use theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(f"dev:{Keyring.generate_key()}\n")
    log.warning(
        "!!! no transit keys configured: using the DEVELOPMENT keys in %s. "
        "Never run like this in production. !!!",
        path,
    )
    # The writer may not have flushed yet when a second process reads: wait for the line.
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise TransitError(f"{path} stays empty")


def load_transit(keys: SecretStr | None, *, development: bool, variable: str) -> Transit:
    """The transit keyring from the setting ``variable`` (its value ``keys``); unset, the shared
    development keys in development and a StartupError naming ``variable`` otherwise."""
    if keys is None:
        if not development:
            raise StartupError(f"{variable} (or {variable}_FILE) is required outside development")
        text = development_keys(state_dir())
    else:
        text = keys.get_secret_value()
    try:
        return Transit.parse(text)
    except ValueError as e:
        raise StartupError(f"{variable}: {e}") from e
