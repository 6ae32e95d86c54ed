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
    "meta_copy_line",
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


# Flags of ms, md and ma that change what is stored (the rest ask for reply content, or
# check the CAS unique: a replica's copy is of a change the owner already made).
_COPIED_FLAGS: Final = frozenset(b"bTNJDMIFE")
# An ms that stored under add or replace stored a set's item.
_COPIED_MS_MODES: Final = {ord("E"): b"MS", ord("R"): b"MS"}


def meta_copy_line(command: MetaCommand) -> bytes:
    """A replica's copy of an ms, md or ma its key's owner made: the same change, quiet,
    without the CAS check (the replica's uniques are its own), the reply flags (`O`, `k`,
    `v`, `c`, ...) or, for ms, the `I` of a CAS'd invalidation; an add or replace that
    stored is copied as a set."""
    key = base64.b64encode(command.key) if command.binary else command.key
    kept = [b"q"]
    for token in command.flags:
        letter = token[0]
        if letter not in _COPIED_FLAGS or (command.verb == MS and letter == 73):  # I
            continue
        if command.verb == MS and letter == 77:  # M
            token = _COPIED_MS_MODES.get(token[1] if len(token) > 1 else 0, token)
        kept.append(token)
    flags = b"".join(b" " + token for token in kept)
    if command.verb == MS:
        value = command.value
        return b"ms %s %d%s\r\n%s\r\n" % (key, len(value), flags, value)
    return b"%s %s%s\r\n" % (_META_VERBS[command.verb], key, flags)
