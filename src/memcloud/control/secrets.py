"""Credential secrets: generating usernames and passwords, hashing and verifying passwords.

Passwords are 128-bit random values we generate ourselves, never user-chosen, so a slow
password KDF (bcrypt, scrypt, argon2) buys nothing: there is no dictionary to slow down, and
brute-forcing 2**128 values is out of reach at any hash speed. Authentication runs on every new
memcache connection, so it must be cheap. A salted HMAC-SHA256 is enough to keep a stolen
database from revealing the passwords, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from memcloud.control.models import CredentialRecord

__all__ = [
    "SALT_BYTES",
    "generate_password",
    "generate_username",
    "hash_password",
    "verify_dummy",
    "verify_password",
]

SALT_BYTES = 16
# The hosted service's shapes: ~6 hex chars of username, 32 hex chars (128 bits) of password.
USERNAME_BYTES = 3
PASSWORD_BYTES = 16


def generate_username() -> str:
    """Six uppercase hex characters, like `9D8D3F` (uniqueness is checked by the store)."""
    return secrets.token_hex(USERNAME_BYTES).upper()


def generate_password() -> str:
    """32 uppercase hex characters: 128 random bits, safe in URLs and environment variables."""
    return secrets.token_hex(PASSWORD_BYTES).upper()


def _digest(salt: bytes, password: bytes) -> bytes:
    return hmac.new(salt, password, hashlib.sha256).digest()


def hash_password(password: str) -> tuple[bytes, bytes]:
    """Return `(salt, hash)` for storing; the password itself is never stored."""
    salt = secrets.token_bytes(SALT_BYTES)
    return salt, _digest(salt, password.encode("utf-8"))


def verify_password(record: CredentialRecord, password: str | bytes) -> bool:
    """True when `password` is the credential's; raw bytes from the wire are accepted."""
    return _verify(record.salt, record.secret_hash, password)


# What an unknown username is checked against, so that it costs the same HMAC and comparison
# as a known one with a wrong password. No password hashes to all zero bytes.
_DUMMY_SALT = bytes(SALT_BYTES)
_DUMMY_HASH = bytes(hashlib.sha256().digest_size)


def verify_dummy(password: str | bytes) -> bool:
    """The work of `verify_password` for a username that has no credential: always False."""
    _verify(_DUMMY_SALT, _DUMMY_HASH, password)
    return False


def _verify(salt: bytes, secret_hash: bytes, password: str | bytes) -> bool:
    if isinstance(password, str):
        try:
            raw = password.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be a generated password
            return False
    else:
        # Stored hashes are over UTF-8; bytes that are not UTF-8 cannot match any password.
        raw = bytes(password)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return hmac.compare_digest(_digest(salt, raw), secret_hash)
