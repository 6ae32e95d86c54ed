"""The numbers incr/decr read in a value, by memcached's rules (strtoull's)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["UINT64_MASK", "parse_counter"]

UINT64_MASK: Final = (1 << 64) - 1

# What memcached's strtoull accepts as a counter: optional leading white space and sign,
# digits, then white space or the end of the value.
_COUNTER: Final = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)(?:[ \t\n\v\f\r]|\Z)")


def parse_counter(value: bytes) -> int | None:
    """The unsigned 64-bit number incr/decr read in `value`, or None (non-numeric)."""
    if value.isdigit() and len(value) <= 20:
        number = int(value)
        return number if number <= UINT64_MASK else None
    match = _COUNTER.match(value)
    if match is None:
        return None
    sign, digits = match.groups()
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > 20:
        return None
    number = int(digits)
    if number > UINT64_MASK:
        return None
    if sign == b"-" and number:
        # strtoull negates in unsigned arithmetic; memcached refuses what looks negative.
        number = (1 << 64) - number
        if number >= 1 << 63:
            return None
    return number
