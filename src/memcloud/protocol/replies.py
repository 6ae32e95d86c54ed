"""The text protocol's reply words, exactly as memcached writes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = [
    "BAD_CHUNK",
    "BAD_FORMAT",
    "DELETED",
    "END",
    "ERROR",
    "EXISTS",
    "INVALID_DELTA",
    "INVALID_EXPTIME",
    "LINE_TOO_LONG",
    "NON_NUMERIC",
    "NOT_FOUND",
    "NOT_STORED",
    "OK",
    "OUT_OF_MEMORY",
    "RESET",
    "STATS_DETAIL_USAGE",
    "STORED",
    "TOO_LARGE",
    "TOUCHED",
    "VALUE",
    "VALUE_CAS",
    "VALUE_END",
    "render_stats",
    "render_value",
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
INVALID_DELTA: Final = b"CLIENT_ERROR invalid numeric delta argument\r\n"
INVALID_EXPTIME: Final = b"CLIENT_ERROR invalid exptime argument\r\n"
NON_NUMERIC: Final = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
TOO_LARGE: Final = b"SERVER_ERROR object too large for cache\r\n"
OUT_OF_MEMORY: Final = b"SERVER_ERROR out of memory storing object\r\n"
UNAUTHENTICATED: Final = b"CLIENT_ERROR unauthenticated\r\n"
AUTH_FAILED: Final = b"CLIENT_ERROR authentication failure\r\n"
NO_WRITE: Final = b"CLIENT_ERROR permission denied: credential has no write capability\r\n"
NO_FLUSH: Final = b"CLIENT_ERROR permission denied: credential has no flush capability\r\n"


STATS_DETAIL_USAGE: Final = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
# One retrieved item, formatted with `%` on the hot path (key, flags, length[, cas], value);
# the `_END` forms also close a single-key get.
VALUE: Final = b"VALUE %s %d %d\r\n%s\r\n"
VALUE_CAS: Final = b"VALUE %s %d %d %d\r\n%s\r\n"
VALUE_END: Final = b"VALUE %s %d %d\r\n%s\r\nEND\r\n"


def render_value(key: bytes, flags: int, value: bytes, cas: int | None) -> bytes:
    if cas is None:
        return VALUE % (key, flags, len(value), value)
    return VALUE_CAS % (key, flags, len(value), cas, value)


def render_stats(stats: Iterable[tuple[str, object]]) -> bytes:
    lines = [f"STAT {name} {value}\r\n".encode() for name, value in stats]
    lines.append(END)
    return b"".join(lines)
