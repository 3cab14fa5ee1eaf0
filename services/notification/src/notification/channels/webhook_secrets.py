"""Per-user webhook secrets (Standard Webhooks ``whsec_<base64>``): issued, sealed, opened.

A secret must be usable to sign, so it cannot be hashed: it is sealed with AES-256-GCM (bound
to the user id, so a sealed value copied onto another user does not open) under a key derived
with HKDF from the service's ``NOTIFICATION_WEBHOOK_SECRET``. It is returned to the user once,
when issued; nothing reads it back in the clear except the webhook channel, to sign.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from notification.channels.destinations import WebhookGuard
from notification.store.protocols import WebhookSecretStore
from shared.sessions.keyring import Keyring, SessionCryptoError

PREFIX = "whsec_"
_KEY_BYTES = 32


def sealing_keyring(master: bytes) -> Keyring:
    """The AES key for webhook secrets, derived from the service's webhook setting."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"parley-notification/webhook-secrets"
    ).derive(master)
    return Keyring({"w1": key}, current="w1")


class WebhookSecrets:
    """The :class:`~notification.store.protocols.Webhooks` of the handlers, and the key lookup
    of the webhook channel."""

    def __init__(
        self, *, store: WebhookSecretStore, keyring: Keyring | None, guard: WebhookGuard
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._guard = guard
        self.enabled = keyring is not None

    async def check(self, url: str) -> None:
        """See Webhooks.check."""
        await self._guard.destination(url)

    async def issue_secret(self, user_id: str) -> str:
        """See Webhooks.issue_secret."""
        if self._keyring is None:
            raise RuntimeError("webhook secrets need the service's webhook master key")
        key = secrets.token_bytes(_KEY_BYTES)
        await self._store.put(user_id, self._keyring.seal(key, binding=user_id))
        return PREFIX + base64.b64encode(key).decode()

    async def forget_secret(self, user_id: str) -> None:
        """See Webhooks.forget_secret."""
        await self._store.delete(user_id)

    async def key_of(self, user_id: str) -> bytes | None:
        """The raw signing key of the user's secret; None when there is none (or it does not
        open, e.g. after the service's key changed: the user sets the webhook again)."""
        sealed = None if self._keyring is None else await self._store.get(user_id)
        if sealed is None or self._keyring is None:
            return None
        try:
            return self._keyring.open(sealed, binding=user_id)
        except SessionCryptoError:
            return None
