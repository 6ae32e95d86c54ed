"""memcached's rules for the numbers of a text command line (safe_strtoul, safe_strtoull and
safe_strtol in its util.c), one token at a time: what is a number, and what is too big."""

from __future__ import annotations

__all__ = ["signed", "unsigned"]


def unsigned(token: bytes, limit: int) -> int | None:
    """memcached's safe_strtoul/safe_strtoull on one token: digits with an optional `+`
    (and `-0`); anything else, or a number over `limit`, is not a number."""
    if not token.isdigit():
        sign = token[:1]
        token = token[1:]
        if (sign != b"+" and sign != b"-") or not token.isdigit():
            return None
        if sign == b"-":
            return 0 if token.count(b"0") == len(token) else None
    if len(token) > 20:
        token = token.lstrip(b"0") or b"0"
        if len(token) > 20:
            return None
    number = int(token)
    return number if number <= limit else None


def signed(token: bytes) -> int | None:
    """memcached's safe_strtol on one token: an optional sign and at most 19 digits."""
    sign = token[:1]
    digits = token[1:] if sign == b"-" or sign == b"+" else token
    if not digits.isdigit():
        return None
    if len(digits) > 19:
        digits = digits.lstrip(b"0") or b"0"
        if len(digits) > 19:
            return None
    number = int(digits)
    return -number if sign == b"-" else number
