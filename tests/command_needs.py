"""What each command needs, written out independently of the command table (protocol/specs.py)
so that tests can hold the table to it: "login" (an authenticated principal), "write" (the
write capability), "flush" (the flush capability); none: answered before authentication."""

from __future__ import annotations

from memcloud.protocol.binary import Opcode

__all__ = ["BINARY_NEEDS", "META_NEEDS", "TEXT_NEEDS", "expected_verdict"]

TEXT_NEEDS = {
    "get": {"login"},
    "gets": {"login"},
    "gat": {"login", "write"},
    "gats": {"login", "write"},
    "set": {"login", "write"},
    "add": {"login", "write"},
    "replace": {"login", "write"},
    "append": {"login", "write"},
    "prepend": {"login", "write"},
    "cas": {"login", "write"},
    "delete": {"login", "write"},
    "incr": {"login", "write"},
    "decr": {"login", "write"},
    "touch": {"login", "write"},
    "flush_all": {"login", "flush"},
    "flush_prefix": {"login", "flush"},
    "stats": {"login"},
    "version": {"login"},
    "verbosity": {"login"},
    "quit": set(),
    # Per-tenant admin commands: reads of the caller's cache (`stats detail on|off` needs
    # the write capability on top, asked for by its own row, STATS_DETAIL_SWITCH).
    "lru_crawler": {"login"},
    "cache_memlimit": {"login"},
    "watch": {"login"},
}
META_NEEDS = {
    "ms": {"login", "write"},
    "mg": {"login"},
    "md": {"login", "write"},
    "ma": {"login", "write"},
    "mn": {"login"},
    "me": {"login"},
}
_WRITES = {
    "SET", "SETQ", "ADD", "ADDQ", "REPLACE", "REPLACEQ", "APPEND", "APPENDQ", "PREPEND",
    "PREPENDQ", "DELETE", "DELETEQ", "INCREMENT", "INCREMENTQ", "DECREMENT", "DECREMENTQ",
    "TOUCH", "GAT", "GATQ", "GATK", "GATKQ",
}  # fmt: skip
_OPEN = {"SASL_LIST_MECHS", "SASL_AUTH", "SASL_STEP", "VERSION"}
BINARY_NEEDS = {
    opcode.name: (
        set()
        if opcode.name in _OPEN
        else {"login", "write"}
        if opcode.name in _WRITES
        else {"login", "flush"}
        if opcode.name in ("FLUSH", "FLUSHQ")
        else {"login"}
    )
    for opcode in Opcode
}


def expected_verdict(needs: set[str], login: bool, write: bool, flush: bool, name: str) -> str:
    """What a principal that is logged in (or not) with these capabilities must be answered:
    "allowed", "login" (the text `set` before authentication is a login attempt),
    "unauthenticated", "no_write" or "no_flush"."""
    if "login" in needs and not login:
        return "login" if name == "set" else "unauthenticated"
    if "write" in needs and not write:
        return "no_write"
    if "flush" in needs and not flush:
        return "no_flush"
    return "allowed"
