"""The plain requests, answered straight from the read without the parser's commands.

The most frequent requests, `get <key>` and `set <key> <flags> <exptime> <bytes>`, written
the plain way (one space between fields, short decimal numbers, a key of printable bytes,
the value whole and ended by CR LF) need none of `TextParser`'s state. Each function answers
None for anything else, which then goes to `TextParser` and gets the same answer there.
"""

from __future__ import annotations

import re
from typing import Final

from memcloud.protocol.limits import KEY_MAX_LENGTH

__all__ = ["plain_get_key", "plain_set"]

# Bytes that make a key other than plain: control characters and whitespace.
_NOT_PLAIN: Final = re.compile(rb"[\x00-\x20\x7f]")


def plain_get_key(data: bytes, pos: int, eol: int) -> bytes | None:
    """The key of the `get <key>` line data[pos:eol] (without its CR LF), if plain."""
    # eol < 0: no line end yet. (Compiled by mypyc, a slice whose end falls before its
    # start raises SystemError instead of answering b"", so this is checked first.)
    # (A slice compares faster than startswith with a position, which parses its arguments.)
    if eol < pos + 5 or data[pos : pos + 4] != b"get ":
        return None
    key = data[pos + 4 : eol]
    if not key or len(key) > KEY_MAX_LENGTH or _NOT_PLAIN.search(key) is not None:
        return None
    return key


def plain_set(
    data: bytes, pos: int, eol: int, item_size_max: int
) -> tuple[bytes, int, int, int, int, bool] | None:
    """key, flags, exptime, the value's start and end, and noreply of the `set` line
    data[pos:eol], if plain and its value is whole in `data` and within `item_size_max`.
    (pymemcache sends every set with `noreply` unless told otherwise.)"""
    if eol < pos + 4 or data[pos : pos + 4] != b"set ":  # see plain_get_key
        return None
    fields = data[pos + 4 : eol].split(b" ")
    noreply = len(fields) == 5 and fields[4] == b"noreply"
    if len(fields) != 4 and not noreply:
        return None
    key, flags, exptime, length = fields[0], fields[1], fields[2], fields[3]
    if not (
        key
        and len(key) <= KEY_MAX_LENGTH
        and flags.isdigit()
        and exptime.isdigit()
        and length.isdigit()
        and len(flags) < 10
        and len(exptime) < 11
        and len(length) < 9
        and _NOT_PLAIN.search(key) is None
    ):
        return None
    start = eol + 2
    end = start + int(length)
    if end + 2 > len(data) or data[end : end + 2] != b"\r\n":
        return None
    if end - start + len(key) > item_size_max:
        return None
    # Most sets carry flags 0 and exptime 0; int() of bytes is a slow generic call.
    flags_value = 0 if flags == b"0" else int(flags)
    exptime_value = 0 if exptime == b"0" else int(exptime)
    return key, flags_value, exptime_value, start, end, noreply
