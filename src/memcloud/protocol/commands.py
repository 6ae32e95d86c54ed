"""Commands the protocols parse into: built once per command, never changed (see Record)."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "Admin",
    "Arith",
    "Close",
    "Command",
    "Delete",
    "FlushAll",
    "FlushPrefix",
    "Invalid",
    "Quit",
    "Record",
    "Retrieve",
    "Stats",
    "Store",
    "StoreVerb",
    "Touch",
    "Verbosity",
    "Version",
]


class StoreVerb(IntEnum):
    """What a storage command asks for, in the protocol's words. Storage names the same
    operations itself (`StoreMode`): neither layer may import the other, so the sessions
    pair the two by member name, at import (a verb without its mode fails there).

    IntEnum: its hash is int's (C), which matters on the per-command path."""

    SET = 1
    ADD = 2
    REPLACE = 3
    APPEND = 4
    PREPEND = 5
    CAS = 6


class Record:
    """A parsed command or request: plain slotted attributes, set once in `__init__`, with
    equality and repr from `_values()` (tests compare them; logs show them).

    Not NamedTuples: a NamedTuple's `__new__` is generated Python that runs interpreted even
    when the parser is compiled (about 270 ns per command, against about 30 ns here)."""

    __slots__ = ()

    def _values(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Record)
            and type(other) is type(self)
            and other._values() == self._values()
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._values()!r}"


class Retrieve(Record):
    """get / gets / gat / gats: `exptime` is None unless the command also touches."""

    __slots__ = ("exptime", "keys", "with_cas")

    def __init__(self, keys: list[bytes], with_cas: bool, exptime: int | None) -> None:
        self.keys: Final = keys
        self.with_cas: Final = with_cas
        self.exptime: Final = exptime

    def _values(self) -> tuple[object, ...]:
        return (self.keys, self.with_cas, self.exptime)


class Store(Record):
    __slots__ = ("cas_unique", "exptime", "flags", "key", "noreply", "value", "verb")

    def __init__(
        self,
        verb: StoreVerb,
        key: bytes,
        flags: int,
        exptime: int,
        value: bytes,
        cas_unique: int,
        noreply: bool,
    ) -> None:
        self.verb: Final = verb
        self.key: Final = key
        self.flags: Final = flags
        self.exptime: Final = exptime
        self.value: Final = value
        self.cas_unique: Final = cas_unique
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (
            self.verb,
            self.key,
            self.flags,
            self.exptime,
            self.value,
            self.cas_unique,
            self.noreply,
        )


class Delete(Record):
    __slots__ = ("key", "noreply")

    def __init__(self, key: bytes, noreply: bool) -> None:
        self.key: Final = key
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.key, self.noreply)


class Arith(Record):
    __slots__ = ("delta", "incr", "key", "noreply")

    def __init__(self, key: bytes, delta: int, incr: bool, noreply: bool) -> None:
        self.key: Final = key
        self.delta: Final = delta
        self.incr: Final = incr
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.key, self.delta, self.incr, self.noreply)


class Touch(Record):
    __slots__ = ("exptime", "key", "noreply")

    def __init__(self, key: bytes, exptime: int, noreply: bool) -> None:
        self.key: Final = key
        self.exptime: Final = exptime
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.key, self.exptime, self.noreply)


class FlushAll(Record):
    __slots__ = ("delay", "noreply")

    def __init__(self, delay: int, noreply: bool) -> None:
        self.delay: Final = delay
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.delay, self.noreply)


class FlushPrefix(Record):
    """memcloud's `flush_prefix <prefix> [noreply]`: flush the keys starting with `prefix`."""

    __slots__ = ("noreply", "prefix")

    def __init__(self, prefix: bytes, noreply: bool) -> None:
        self.prefix: Final = prefix
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.prefix, self.noreply)


class Stats(Record):
    __slots__ = ("args",)

    def __init__(self, args: tuple[bytes, ...]) -> None:
        self.args: Final = args

    def _values(self) -> tuple[object, ...]:
        return (self.args,)


class Admin(Record):
    """A per-tenant admin command besides `stats` (`lru_crawler`, `cache_memlimit`,
    `watch`): its name and the tokens after it, executed by memcloud.admin_commands."""

    __slots__ = ("args", "verb")

    def __init__(self, verb: bytes, args: tuple[bytes, ...]) -> None:
        self.verb: Final = verb
        self.args: Final = args

    def _values(self) -> tuple[object, ...]:
        return (self.verb, self.args)


class Version(Record):
    __slots__ = ()

    def _values(self) -> tuple[object, ...]:
        return ()


class Verbosity(Record):
    __slots__ = ("noreply",)

    def __init__(self, noreply: bool) -> None:
        self.noreply: Final = noreply

    def _values(self) -> tuple[object, ...]:
        return (self.noreply,)


class Quit(Record):
    __slots__ = ()

    def _values(self) -> tuple[object, ...]:
        return ()


class Invalid(Record):
    """Input that is not a valid command: the reply says why (empty under noreply); the
    connection carries on. `unlink` names a key a refused `set` must drop (as memcached
    drops the old value when a too-large `set` is refused)."""

    __slots__ = ("reply", "unlink")

    def __init__(self, reply: bytes, unlink: bytes | None = None) -> None:
        self.reply: Final = reply
        self.unlink: Final = unlink

    def _values(self) -> tuple[object, ...]:
        return (self.reply, self.unlink)


class Close(Record):
    """Input after which the connection must close: `reply` (maybe empty) is its last
    answer. An HTTP request line (memcached's cross-protocol guard), or a line too long to
    find the data block it may announce: reading on would run bytes the client sent as
    something else."""

    __slots__ = ("reply",)

    def __init__(self, reply: bytes) -> None:
        self.reply: Final = reply

    def _values(self) -> tuple[object, ...]:
        return (self.reply,)


Command = (
    Retrieve
    | Store
    | Delete
    | Arith
    | Touch
    | FlushAll
    | FlushPrefix
    | Stats
    | Admin
    | Version
    | Verbosity
    | Quit
    | Invalid
    | Close
)
