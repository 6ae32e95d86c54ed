"""Single sign-on tokens as a platform computes them (Heroku's add-on SSO).

* v3 `resource_token = sha1("<resource uuid>:<sso salt>:<timestamp>")` (hex);
* the user-scoped form `sha256("<uuid>:<salt>:<timestamp>:<user id>:<user email>")`;
* legacy v1 used the numeric id instead of the uuid, with the same sha1 shape.

A token is good for `TOKEN_SECONDS` either side of now (clocks differ a little), and only when
its timestamp is later than the cache's last `rotate_sso`.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "TOKEN_SECONDS",
    "canonical_token",
    "resource_token",
    "token_hash",
    "token_ok",
    "user_scoped_token",
]

# The platform's documented validity: five minutes.
TOKEN_SECONDS = 5 * 60


def canonical_token(token: str) -> str:
    """The one spelling of a token: every spelling `token_ok` accepts (spaces around it,
    upper-case hex) is the same token, and is remembered as used under this one."""
    return token.strip().lower()


def token_hash(token: str) -> bytes:
    """What the control store remembers of a used token (never the token itself)."""
    return hashlib.sha256(b"sso-token\0" + canonical_token(token).encode()).digest()


def resource_token(resource_id: str, salt: str, timestamp: str) -> str:
    return hashlib.sha1(f"{resource_id}:{salt}:{timestamp}".encode()).hexdigest()


def user_scoped_token(
    resource_id: str, salt: str, timestamp: str, user_id: str, user_email: str
) -> str:
    text = f"{resource_id}:{salt}:{timestamp}:{user_id}:{user_email}"
    return hashlib.sha256(text.encode()).hexdigest()


def token_ok(
    token: str,
    *,
    resource_id: str,
    salt: str,
    timestamp: str,
    user_id: str = "",
    user_email: str = "",
) -> bool:
    """True when `token` is either form of the token for these values (constant time)."""
    given = canonical_token(token).encode()
    expected = [resource_token(resource_id, salt, timestamp)]
    if user_id or user_email:
        expected.append(user_scoped_token(resource_id, salt, timestamp, user_id, user_email))
    ok = False
    for candidate in expected:
        ok |= hmac.compare_digest(given, candidate.encode())
    return ok
