"""Deploy-hook tokens: a per-cache secret that can only flush (optionally one key prefix),
revocable, several per cache, shown once and stored hashed. The records and the rules every
control store checks (SQL in memcloud.control.sql.hooks, memory in
memcloud.control.memory_hooks).

A token is 256 random bits, so a slow password hash buys nothing (there is no dictionary to
slow down); it is stored as a SHA-256 digest with a domain prefix, looked up by that digest
(an index lookup on a hash reveals nothing usable about the token) and compared in constant
time. Hook writes change nothing the data plane reads: no revision bump.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

from memcloud.control.base import Conflict, ControlError, NotFound
from memcloud.control.hook_records import HookRecord, NewHook

__all__ = [
    "HINT_CHARS",
    "HOOK_PATH",
    "KEPT_REVOKED",
    "MAX_HOOKS_PER_CACHE",
    "MAX_NAME",
    "MAX_PREFIX",
    "TOKEN_PREFIX",
    "HookRecord",
    "NewHook",
    "check_hook_count",
    "hash_token",
    "hook_url",
    "is_token_form",
    "new_token",
    "no_hook",
    "token_matches",
    "validate_hook",
]

# Active tokens a cache may hold: one per deploy pipeline is plenty.
MAX_HOOKS_PER_CACHE: Final = 20
# Revoked tokens kept (listed as revoked, so a hook that still fires is told why); older
# ones are forgotten and then refused as unknown.
KEPT_REVOKED: Final = 20
MAX_NAME: Final = 100
# A memcache key is at most 250 bytes, so a longer prefix matches no key.
MAX_PREFIX: Final = 250
# Recognisable in logs and by secret scanners; 32 random bytes in URL-safe base64 follow.
TOKEN_PREFIX: Final = "mch_"
TOKEN_BYTES: Final = 32
_TOKEN_RE: Final = re.compile(r"^mch_[A-Za-z0-9_-]{43}$")
# What a listing shows of a token so people can tell them apart: the prefix and 4 random
# characters (24 of its 256 bits).
HINT_CHARS: Final = len(TOKEN_PREFIX) + 4
_DOMAIN: Final = b"memcloud deploy-hook token\0"
# Where a token flushes on the HTTP API (api/hook_routes.py): the token is its only secret.
HOOK_PATH: Final = "/api/v1/hooks/{token}/flush"


def hook_url(base_url: str, token: str) -> str:
    """The URL a deploy tool POSTs to, on the API at `base_url`."""
    return base_url.rstrip("/") + HOOK_PATH.format(token=token)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def is_token_form(token: str) -> bool:
    """Whether `token` can be a token at all (anything else is refused unlooked-up)."""
    return bool(_TOKEN_RE.match(token))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(_DOMAIN + token.encode("utf-8", "replace")).digest()


def token_matches(stored: bytes, token: str) -> bool:
    return hmac.compare_digest(stored, hash_token(token))


def validate_hook(name: object, prefix: object) -> tuple[str, str]:
    """A hook's label and prefix, checked: printable, bounded; a prefix as a memcache key
    could start (no spaces or control characters)."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not name.isprintable():
        raise ControlError(f"a hook's name must be at most {MAX_NAME} printable characters")
    if not isinstance(prefix, str):
        raise ControlError("a hook's prefix must be a string")
    raw = prefix.encode("utf-8", "replace")
    if len(raw) > MAX_PREFIX or any(b <= 32 or b == 127 for b in raw):
        raise ControlError(
            f"a hook's prefix must be at most {MAX_PREFIX} bytes without spaces or control"
            " characters (a memcache key's)"
        )
    return name.strip(), prefix


def check_hook_count(active: int) -> None:
    if active >= MAX_HOOKS_PER_CACHE:
        raise Conflict(
            f"a cache has at most {MAX_HOOKS_PER_CACHE} active deploy hooks; revoke one first"
        )


def no_hook(cache_id: int, hook_id: int) -> NotFound:
    return NotFound(f"no deploy hook with id {hook_id} in cache {cache_id}")
