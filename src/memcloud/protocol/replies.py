"""The text protocol's reply words, exactly as memcached writes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = [
    "BAD_CHUNK",
    "BAD_FORMAT",
    "CRLF",
    "CRLF_END",
    "DELETED",
    "END",
    "ERROR",
    "EXISTS",
    "INVALID_DELTA",
    "INVALID_EXPTIME",
    "LINE_TOO_LONG",
    "META_FLAGS_TOO_LONG",
    "NON_NUMERIC",
    "NOT_FOUND",
    "NOT_STORED",
    "OK",
    "OUT_OF_MEMORY",
    "RESET",
    "STATS_DETAIL_USAGE",
    "STORED",
    "TOO_LARGE",
    "TOO_MANY_CONNECTIONS",
    "TOUCHED",
    "VALUE",
    "VALUE_CAS",
    "VALUE_PREFIX",
    "VALUE_SUFFIXES_MAX",
    "render_stats",
    "render_value",
    "value_suffix",
]

STORED: Final = b"STORED\r\n"
NOT_STORED: Final = b"NOT_STORED\r\n"
EXISTS: Final = b"EXISTS\r\n"
NOT_FOUND: Final = b"NOT_FOUND\r\n"
DELETED: Final = b"DELETED\r\n"
TOUCHED: Final = b"TOUCHED\r\n"
END: Final = b"END\r\n"
OK: Final = b"OK\r\n"
RESET: Final = b"RESET\r\n"
ERROR: Final = b"ERROR\r\n"
BAD_FORMAT: Final = b"CLIENT_ERROR bad command line format\r\n"
BAD_DELETE_FORMAT: Final = (
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
)
BAD_CHUNK: Final = b"CLIENT_ERROR bad data chunk\r\n"
LINE_TOO_LONG: Final = b"CLIENT_ERROR line too long\r\n"
META_FLAGS_TOO_LONG: Final = b"CLIENT_ERROR options flags too long\r\n"
INVALID_DELTA: Final = b"CLIENT_ERROR invalid numeric delta argument\r\n"
INVALID_EXPTIME: Final = b"CLIENT_ERROR invalid exptime argument\r\n"
NON_NUMERIC: Final = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
TOO_LARGE: Final = b"SERVER_ERROR object too large for cache\r\n"
OUT_OF_MEMORY: Final = b"SERVER_ERROR out of memory storing object\r\n"
UNAUTHENTICATED: Final = b"CLIENT_ERROR unauthenticated\r\n"
AUTH_FAILED: Final = b"CLIENT_ERROR authentication failure\r\n"
# memcached's answer when it has no connection slot left (here also: the cache's own limit).
TOO_MANY_CONNECTIONS: Final = b"SERVER_ERROR Too many open connections\r\n"
NO_WRITE: Final = b"CLIENT_ERROR permission denied: credential has no write capability\r\n"
NO_FLUSH: Final = b"CLIENT_ERROR permission denied: credential has no flush capability\r\n"
# `flush_prefix` while the cache's pending prefix flushes are at their bound.
PREFIX_FLUSHES_PENDING: Final = (
    b"SERVER_ERROR too many prefix flushes pending; retry in a few seconds\r\n"
)


STATS_DETAIL_USAGE: Final = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
# One retrieved item, formatted with `%` (key, flags, length[, cas], value). The hot paths
# assemble it instead from VALUE_PREFIX, the key, `value_suffix`, the value and CRLF.
VALUE: Final = b"VALUE %s %d %d\r\n%s\r\n"
VALUE_CAS: Final = b"VALUE %s %d %d %d\r\n%s\r\n"
VALUE_PREFIX: Final = b"VALUE "
CRLF: Final = b"\r\n"
CRLF_END: Final = b"\r\nEND\r\n"  # closes the value of a single-key get, and the reply

# The " <flags> <bytes>\r\n" after the key of a VALUE line, kept formatted per (flags, length):
# a workload stores few distinct pairs, and `%` formatting on every hit cost more than the
# rest of a get's reply. Bounded: cleared when full.
_VALUE_SUFFIXES: dict[int, bytes] = {}
VALUE_SUFFIXES_MAX: Final = 4096


def value_suffix(flags: int, length: int) -> bytes:
    code = (flags << 32) | length  # flags are 32-bit
    suffix = _VALUE_SUFFIXES.get(code)
    if suffix is None:
        if len(_VALUE_SUFFIXES) >= VALUE_SUFFIXES_MAX:
            _VALUE_SUFFIXES.clear()
        suffix = _VALUE_SUFFIXES[code] = b" %d %d\r\n" % (flags, length)
    return suffix


def render_value(key: bytes, flags: int, value: bytes, cas: int | None) -> bytes:
    if cas is None:
        return VALUE % (key, flags, len(value), value)
    return VALUE_CAS % (key, flags, len(value), cas, value)


def render_stats(stats: Iterable[tuple[str, object]]) -> bytes:
    lines = [f"STAT {name} {value}\r\n".encode() for name, value in stats]
    lines.append(END)
    return b"".join(lines)
