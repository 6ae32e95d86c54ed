"""The text protocol's cross-protocol guards: the lines after which reading on would run, as
commands, bytes the client did not send as commands (an HTTP request's body, the rest of a
line too long to read). memcached closes the connection after them; so does memcloud."""

from __future__ import annotations

from typing import Final

from memcloud.protocol import replies
from memcloud.protocol.commands import Close, Command, Invalid

__all__ = ["HANG_UP", "RETRIEVAL_PREFIXES", "is_http_request_line", "too_long"]

# Retrieval lines carry only keys (and may be longer than other lines: RETRIEVAL_LINE_MAX).
RETRIEVAL_PREFIXES: Final = (b"get ", b"gets ", b"gat ", b"gats ")
# An HTTP request line: closed without a word, as memcached does.
HANG_UP: Final = Close(b"")
_HTTP: Final = b"HTTP/"
# memcached dispatches on a command's first byte: an unknown command starting with one of
# these answers ERROR there before its HTTP/ check is reached (as do the 2-byte m* ones).
_DISPATCHED_FIRST_BYTES: Final = frozenset(b"gsacidt")


def is_http_request_line(tokens: list[bytes]) -> bool:
    """Whether the line of an unknown command (its tokens, at least one) closes the connection
    by memcached's rule: its last token starts with `HTTP/` (case-sensitive). A browser made
    to POST here sends its body, maybe `flush_all`, after this line."""
    verb = tokens[0]
    return (
        tokens[-1][:5] == _HTTP
        and len(verb) > 1
        and verb[0] not in _DISPATCHED_FIRST_BYTES
        and not (len(verb) == 2 and verb[0] == 109)  # b"m"
    )


def too_long(buf: bytes, pos: int) -> Command:
    """The answer to a line over its limit, starting at buf[pos]. A retrieval line carries
    only keys: refused, the connection kept. Any other may announce a data block that could
    not then be found, or be an HTTP request line whose `HTTP/` token is out of sight:
    refused, and the connection closes (memcached closes it without an answer)."""
    if buf.startswith(RETRIEVAL_PREFIXES, pos):
        return Invalid(replies.LINE_TOO_LONG)
    return Close(replies.LINE_TOO_LONG)
