"""The command table: for every command of each protocol, what it needs from its principal
(a login, the write capability, the flush capability) and, for the text protocol, its arity.

Pure data. The parsers read the text arity here (one source for "wrong number of tokens"),
and the session seam's gate (`memcloud.gate.allowed`) reads the needs for every command on
every path, fast paths included. A command not in the table is refused by the gate.
"""

from __future__ import annotations

from typing import Final

from memcloud.protocol.binary import Opcode
from memcloud.protocol.commands import (
    Admin,
    Arith,
    Close,
    Delete,
    FlushAll,
    FlushPrefix,
    Invalid,
    Quit,
    Retrieve,
    Stats,
    Store,
    StoreVerb,
    Touch,
    Verbosity,
    Version,
)

__all__ = [
    "ADMIN_VERBS",
    "ANY_TOKENS",
    "BINARY_SPECS",
    "CLOSE",
    "INVALID",
    "META_SPECS",
    "NEEDS_FLUSH",
    "NEEDS_LOGIN",
    "NEEDS_WRITE",
    "REJECTED",
    "SPECS_BY_OPCODE",
    "STATS_DETAIL_SWITCH",
    "TEXT_SPECS",
    "CommandSpec",
    "text_spec",
]

# What a command needs, as bits: the gate compares them with a principal's capabilities.
NEEDS_LOGIN: Final = 1  # an authenticated principal (absent: allowed before authentication)
NEEDS_WRITE: Final = 2  # the credential's write capability (the command changes the cache)
NEEDS_FLUSH: Final = 4  # the credential's flush capability
# A text command's maximum token count when any number of arguments is accepted.
ANY_TOKENS: Final = 1 << 30


class CommandSpec:
    """One command's row of the table. Slotted with Final attributes: the gate reads
    `needs` per command on the compiled hot path."""

    __slots__ = ("login", "max_tokens", "min_tokens", "name", "needs")

    def __init__(
        self,
        name: str,
        needs: int,
        min_tokens: int = 0,
        max_tokens: int = 0,
        login: bool = False,
    ) -> None:
        self.name: Final = name
        self.needs: Final = needs
        # Text only: the tokens of a well-formed line, the command's name included.
        self.min_tokens: Final = min_tokens
        self.max_tokens: Final = max_tokens
        # Before authentication the command is a login attempt (the text `set`, which
        # carries a credential), not a command the gate refuses.
        self.login: Final = login

    @property
    def before_auth(self) -> bool:
        return not self.needs & NEEDS_LOGIN

    @property
    def needs_write(self) -> bool:
        return bool(self.needs & NEEDS_WRITE)

    @property
    def needs_flush(self) -> bool:
        return bool(self.needs & NEEDS_FLUSH)

    def __repr__(self) -> str:
        return f"CommandSpec({self.name!r}, needs={self.needs})"


_READ: Final = NEEDS_LOGIN
_WRITE: Final = NEEDS_LOGIN | NEEDS_WRITE
_FLUSH: Final = NEEDS_LOGIN | NEEDS_FLUSH
_OPEN: Final = 0


def _text(
    name: str, needs: int, min_tokens: int, max_tokens: int = ANY_TOKENS, login: bool = False
) -> tuple[bytes, CommandSpec]:
    return name.encode(), CommandSpec(name, needs, min_tokens, max_tokens, login)


# The text commands memcloud implements, by the name that starts their line.
TEXT_SPECS: Final[dict[bytes, CommandSpec]] = dict(
    (
        _text("get", _READ, 2),
        _text("gets", _READ, 2),
        _text("gat", _WRITE, 2),  # changes expiry
        _text("gats", _WRITE, 2),
        # <verb> <key> <flags> <exptime> <bytes> [noreply]; before login `set` is the login.
        _text("set", _WRITE, 5, 6, login=True),
        _text("add", _WRITE, 5, 6),
        _text("replace", _WRITE, 5, 6),
        _text("append", _WRITE, 5, 6),
        _text("prepend", _WRITE, 5, 6),
        _text("cas", _WRITE, 6, 7),
        _text("delete", _WRITE, 2, 4),  # delete <key> [0] [noreply]
        _text("incr", _WRITE, 3, 4),
        _text("decr", _WRITE, 3, 4),
        _text("touch", _WRITE, 3, 4),
        _text("flush_all", _FLUSH, 1, 3),
        _text("flush_prefix", _FLUSH, 2, 3),  # memcloud's: flush_prefix <prefix> [noreply]
        _text("stats", _READ, 1),
        # Unlike binary Version, asked before login it is answered "authentication required"
        # (memcached -Y answers nothing but the login set either).
        _text("version", _READ, 1),
        _text("verbosity", _READ, 2, 3),
        _text("quit", _OPEN, 1),
        # Per-tenant admin commands (memcloud.admin_commands): each for the caller's cache
        # only. metadump lists keys, a read; cache_memlimit and watch are refused after login.
        _text("lru_crawler", _READ, 2),
        _text("cache_memlimit", _READ, 2),
        _text("watch", _READ, 1),
    )
)
# The admin commands the parser hands over whole (name and tokens) as `Admin`.
ADMIN_VERBS: Final = frozenset((b"lru_crawler", b"cache_memlimit", b"watch"))
# `stats detail on|off` switches the cache's per-prefix counting for all its credentials
# (and costs every command of the cache a little): a change to the cache, so a write.
STATS_DETAIL_SWITCH: Final = CommandSpec("stats detail on|off", _WRITE)

# The meta commands, with what they will need. The meta protocol is not implemented yet:
# the parser answers each of them ERROR (skipping an `ms` data block), whoever asks.
META_SPECS: Final[dict[bytes, CommandSpec]] = dict(
    (
        _text("ms", _WRITE, 3),  # ms <key> <datalen> <flag>*
        _text("mg", _READ, 2),
        _text("md", _WRITE, 2),
        _text("ma", _WRITE, 2),
        _text("mn", _READ, 1),
        _text("me", _READ, 2),
    )
)

# What the text parser makes of input that is no command: an error reply (maybe with a key
# to unlink, itself gated as a write) and a line after which the connection closes. Both
# are answered whoever sent them, as memcached does.
INVALID: Final = CommandSpec("<invalid>", _OPEN)
CLOSE: Final = CommandSpec("<close>", _OPEN)

_STORE_SPECS: Final = {verb: TEXT_SPECS[verb.name.lower().encode()] for verb in StoreVerb}
_BY_TYPE: Final[dict[type, CommandSpec]] = {
    Delete: TEXT_SPECS[b"delete"],
    Touch: TEXT_SPECS[b"touch"],
    FlushAll: TEXT_SPECS[b"flush_all"],
    FlushPrefix: TEXT_SPECS[b"flush_prefix"],
    Stats: TEXT_SPECS[b"stats"],
    Version: TEXT_SPECS[b"version"],
    Verbosity: TEXT_SPECS[b"verbosity"],
    Quit: TEXT_SPECS[b"quit"],
    Invalid: INVALID,
    Close: CLOSE,
}
_GET: Final = TEXT_SPECS[b"get"]
_GETS: Final = TEXT_SPECS[b"gets"]
_GAT: Final = TEXT_SPECS[b"gat"]
_GATS: Final = TEXT_SPECS[b"gats"]
_INCR: Final = TEXT_SPECS[b"incr"]
_DECR: Final = TEXT_SPECS[b"decr"]


def text_spec(command: object) -> CommandSpec | None:
    """The row of a command the text parser produced; None for anything else."""
    if isinstance(command, Retrieve):
        if command.exptime is None:
            return _GETS if command.with_cas else _GET
        return _GATS if command.with_cas else _GAT
    if isinstance(command, Store):
        return _STORE_SPECS[command.verb]
    if isinstance(command, Arith):
        return _INCR if command.incr else _DECR
    if isinstance(command, Admin):
        return TEXT_SPECS.get(command.verb)
    return _BY_TYPE.get(type(command))


def _binary(opcodes: tuple[Opcode, ...], needs: int) -> dict[int, CommandSpec]:
    return {int(opcode): CommandSpec(opcode.name, needs) for opcode in opcodes}


# Every opcode the binary parser accepts. Before authentication only SASL and Version are
# answered (memcached's rule with SASL on); a quiet opcode needs what its loud one needs.
BINARY_SPECS: Final[dict[int, CommandSpec]] = {
    **_binary(
        (Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ, Opcode.STAT, Opcode.NOOP), _READ
    ),
    **_binary((Opcode.QUIT, Opcode.QUITQ), _READ),
    **_binary(
        (
            Opcode.SET,
            Opcode.SETQ,
            Opcode.ADD,
            Opcode.ADDQ,
            Opcode.REPLACE,
            Opcode.REPLACEQ,
            Opcode.APPEND,
            Opcode.APPENDQ,
            Opcode.PREPEND,
            Opcode.PREPENDQ,
            Opcode.DELETE,
            Opcode.DELETEQ,
            Opcode.INCREMENT,
            Opcode.INCREMENTQ,
            Opcode.DECREMENT,
            Opcode.DECREMENTQ,
            Opcode.TOUCH,
            Opcode.GAT,  # changes expiry
            Opcode.GATQ,
            Opcode.GATK,
            Opcode.GATKQ,
        ),
        _WRITE,
    ),
    **_binary((Opcode.FLUSH, Opcode.FLUSHQ), _FLUSH),
    **_binary((Opcode.SASL_LIST_MECHS, Opcode.SASL_AUTH, Opcode.SASL_STEP, Opcode.VERSION), _OPEN),
}
# A frame the binary parser refused (unknown opcode, bad lengths, too large a value):
# answered with its status once logged in, "authentication failure" before.
REJECTED: Final = CommandSpec("<rejected>", _READ)
# BINARY_SPECS indexed by opcode (a byte): one tuple index per request on the hot path.
SPECS_BY_OPCODE: Final[tuple[CommandSpec | None, ...]] = tuple(
    BINARY_SPECS.get(opcode) for opcode in range(256)
)
