"""Every protocol limit, named, with the reason it has the value it has."""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTH_VALUE_MAX",
    "KEY_MAX_LENGTH",
    "LINE_MAX",
    "LINE_WAIT_JOIN",
    "META_TOKENS_MAX",
    "RETRIEVAL_LINE_MAX",
    "UINT32_MAX",
    "UINT64_MAX",
    "VALUE_LENGTH_MAX",
]

# memcached's KEY_MAX_LENGTH.
KEY_MAX_LENGTH: Final = 250
# A command line other than a retrieval: memcached refuses lines over 2048 bytes.
LINE_MAX: Final = 2048
# get/gets/gat/gats lines carry many keys: room for 2,000 keys of the longest length, and
# still a bound on what one connection can make us hold.
RETRIEVAL_LINE_MAX: Final = 2000 * (KEY_MAX_LENGTH + 1) + 64
# A line still without its end that is longer than this waits as separate chunks, joined
# once: re-joining on each read would cost quadratic time for a client sending slowly.
LINE_WAIT_JOIN: Final = 8192
# memcached's MFLAG_MAX_OPT_LENGTH: a meta line of this many tokens or more is refused.
META_TOKENS_MAX: Final = 20
# memcached refuses a data block length over INT_MAX - 2 as a bad command line.
VALUE_LENGTH_MAX: Final = (1 << 31) - 1 - 2
# A credential sent with the text `set` login is a username and a password, never more.
AUTH_VALUE_MAX: Final = 1024
UINT32_MAX: Final = (1 << 32) - 1
UINT64_MAX: Final = (1 << 64) - 1
