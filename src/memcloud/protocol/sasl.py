"""SASL PLAIN (RFC 4616) as memcache clients send it in a SASL Auth request's value.

`\\0user\\0password` (bmemcached, Dalli, memjs) and `authzid\\0user\\0password` (libmemcached
and so pylibmc and PHP send the username again as the authorization identity).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MECHANISMS", "PLAIN", "PlainCredentials", "parse_plain"]

PLAIN = b"PLAIN"
# Exactly one mechanism: libmemcached picks another one if more are offered.
MECHANISMS = PLAIN


class PlainCredentials(NamedTuple):
    authzid: bytes
    username: bytes
    password: bytes


def parse_plain(message: bytes) -> PlainCredentials | None:
    """The three fields of a PLAIN message, or None when it is not one.

    An authorization identity other than the username itself asks to act as someone
    else; nothing here supports that, so such a message is refused (None).
    """
    parts = message.split(b"\x00")
    if len(parts) != 3:
        return None
    authzid, username, password = parts
    if not username or (authzid and authzid != username):
        return None
    return PlainCredentials(authzid, username, password)
