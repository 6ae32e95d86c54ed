"""What a key prefix may be, for a prefix flush: what a memcache key may begin with."""

from __future__ import annotations

import re
from typing import Final

from memcloud.protocol.limits import KEY_MAX_LENGTH

__all__ = ["prefix_error"]

# A text protocol key is one token: no space, no control character (memcached's rule).
_NOT_IN_KEYS: Final = re.compile(rb"[\x00-\x20\x7f]")


def prefix_error(prefix: bytes) -> str | None:
    """Why `prefix` cannot begin a memcache key, or None when it can (the empty prefix,
    every key, included)."""
    if len(prefix) > KEY_MAX_LENGTH:
        return f"prefix is longer than a key may be ({KEY_MAX_LENGTH} bytes)"
    if _NOT_IN_KEYS.search(prefix):
        return "prefix contains a space or a control character, which no key may contain"
    return None
