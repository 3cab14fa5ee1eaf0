"""Cryptography of the auth service: password hashing, token signing, sealing secrets at rest.

Adapters over well-kept libraries (argon2-cffi, PyJWT, cryptography); no I/O here.
"""
