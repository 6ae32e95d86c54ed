"""The text protocol's commands written back as a client sends them: what a node forwards
to the node that owns the key (memcloud.routing). The parser read them; each renders to
the line (and data block) that parses back to the same command."""

from __future__ import annotations

import base64
from typing import Final

from memcloud.protocol.commands import Arith, Delete, Store, StoreVerb, Touch
from memcloud.protocol.meta import MA, MD, MG, MS, MetaCommand

__all__ = [
    "arith_line",
    "delete_line",
    "meta_line",
    "retrieval_line",
    "store_line",
    "touch_line",
]

_META_VERBS: Final = {MG: b"mg", MS: b"ms", MD: b"md", MA: b"ma"}

_VERBS: Final = {verb: verb.name.lower().encode() for verb in StoreVerb}


def _noreply(noreply: bool) -> bytes:
    return b" noreply" if noreply else b""


def retrieval_line(key: bytes, with_cas: bool, exptime: int | None) -> bytes:
    """One key of a get / gets / gat / gats."""
    if exptime is None:
        return (b"gets " if with_cas else b"get ") + key + b"\r\n"
    return b"%s %d %s\r\n" % (b"gats" if with_cas else b"gat", exptime, key)


def store_line(command: Store, *, as_set: bool = False, noreply: bool | None = None) -> bytes:
    """The store as sent (`as_set`: as a plain `set` of the same item; `noreply` instead
    of the command's own)."""
    verb = b"set" if as_set else _VERBS[command.verb]
    cas = b" %d" % command.cas_unique if command.verb is StoreVerb.CAS and not as_set else b""
    silent = command.noreply if noreply is None else noreply
    head = b"%s %s %d %d %d%s%s\r\n" % (
        verb,
        command.key,
        command.flags,
        command.exptime,
        len(command.value),
        cas,
        _noreply(silent),
    )
    return b"".join((head, command.value, b"\r\n"))


def delete_line(command: Delete) -> bytes:
    return b"delete %s%s\r\n" % (command.key, _noreply(command.noreply))


def arith_line(command: Arith) -> bytes:
    verb = b"incr" if command.incr else b"decr"
    return b"%s %s %d%s\r\n" % (verb, command.key, command.delta, _noreply(command.noreply))


def touch_line(command: Touch) -> bytes:
    return b"touch %s %d%s\r\n" % (command.key, command.exptime, _noreply(command.noreply))


def meta_line(command: MetaCommand) -> bytes:
    """A mg, ms, md or ma as sent: its key (base64 again if it came so), its flag tokens in
    their order, and for ms its data block."""
    key = base64.b64encode(command.key) if command.binary else command.key
    flags = b"".join(b" " + token for token in command.flags)
    verb = _META_VERBS[command.verb]
    if command.verb == MS:
        value = command.value
        return b"ms %s %d%s\r\n%s\r\n" % (key, len(value), flags, value)
    return b"%s %s%s\r\n" % (verb, key, flags)
