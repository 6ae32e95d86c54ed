"""Commands the protocols parse into. NamedTuples: immutable, and cheap to build per command."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "Arith",
    "Command",
    "Delete",
    "FlushAll",
    "Invalid",
    "Quit",
    "Retrieve",
    "Stats",
    "Store",
    "StoreVerb",
    "Touch",
    "Verbosity",
    "Version",
]


class StoreVerb(IntEnum):
    """IntEnum: its hash is int's (C), which matters on the per-command path."""

    SET = 1
    ADD = 2
    REPLACE = 3
    APPEND = 4
    PREPEND = 5
    CAS = 6


class Retrieve(NamedTuple):
    """get / gets / gat / gats: `exptime` is None unless the command also touches."""

    keys: list[bytes]
    with_cas: bool
    exptime: int | None


class Store(NamedTuple):
    verb: StoreVerb
    key: bytes
    flags: int
    exptime: int
    value: bytes
    cas_unique: int
    noreply: bool


class Delete(NamedTuple):
    key: bytes
    noreply: bool


class Arith(NamedTuple):
    key: bytes
    delta: int
    incr: bool
    noreply: bool


class Touch(NamedTuple):
    key: bytes
    exptime: int
    noreply: bool


class FlushAll(NamedTuple):
    delay: int
    noreply: bool


class Stats(NamedTuple):
    args: tuple[bytes, ...]


class Version(NamedTuple):
    pass


class Verbosity(NamedTuple):
    noreply: bool


class Quit(NamedTuple):
    pass


class Invalid(NamedTuple):
    """Input that is not a valid command: the reply says why (empty under noreply); the
    connection carries on. `unlink` names a key a refused `set` must drop (as memcached
    drops the old value when a too-large `set` is refused)."""

    reply: bytes
    unlink: bytes | None = None


Command = (
    Retrieve
    | Store
    | Delete
    | Arith
    | Touch
    | FlushAll
    | Stats
    | Version
    | Verbosity
    | Quit
    | Invalid
)
