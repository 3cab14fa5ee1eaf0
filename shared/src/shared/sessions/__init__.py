"""Encrypted sessions in Redis: :class:`SessionStore` and the AES-GCM :class:`Keyring` behind it.

>>> keyring = Keyring.parse(settings.session_keys)         # "k1:<base64url>,k2:<base64url>"
>>> sessions = SessionStore(client, KeySpace("auth"), keyring, data_type=dict, idle_ttl=1800)
>>> session = await sessions.create(user_id, {"roles": ["member"]})
>>> await sessions.get(session.id, touch=True)
"""

from shared.sessions.keyring import Keyring, SessionCryptoError, SessionError
from shared.sessions.store import Session, SessionStore, session_handle, user_digest

__all__ = [
    "Keyring",
    "Session",
    "SessionCryptoError",
    "SessionError",
    "SessionStore",
    "session_handle",
    "user_digest",
]
