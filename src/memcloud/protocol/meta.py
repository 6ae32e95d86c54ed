"""memcached's meta commands (`mg ms md ma mn me`), sans-IO: one command line's tokens in,
a `MetaCommand` (or an `Invalid` carrying memcached's error reply) out.

The rules and the error words follow memcached 1.6's proto_text.c (process_m*_command and
_meta_flag_preparse), check for check and in its order, so that the same line answers the
same bytes; docs/meta-protocol.md lists where memcloud deliberately differs (the `E` flag of
memcached 1.6.21, and the few refusals that skip a data block memcached would read as
commands). The data block of `ms` is read by the text parser (protocol/text.py), which
calls `parse_meta_set` for the line and then waits for the block.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

from memcloud.protocol import replies
from memcloud.protocol.commands import Invalid, Record
from memcloud.protocol.limits import KEY_MAX_LENGTH, META_TOKENS_MAX, UINT32_MAX, UINT64_MAX
from memcloud.protocol.numbers import signed, unsigned
from memcloud.protocol.specs import META_SPECS, CommandSpec

__all__ = [
    "MA",
    "MD",
    "ME",
    "MG",
    "MN",
    "MS",
    "OPAQUE_MAX",
    "MetaCommand",
    "parse_meta",
    "parse_meta_set",
    "plain_meta_get_key",
]

# The verbs, as small ints (compared on the per-command path).
MG: Final = 1
MS: Final = 2
MD: Final = 3
MA: Final = 4
MN: Final = 5
ME: Final = 6
_VERBS: Final = {b"mg": MG, b"ms": MS, b"md": MD, b"ma": MA, b"mn": MN, b"me": ME}

# memcached's MFLAG_MAX_OPAQUE_LENGTH: an opaque token (flag letter included) is at most 32.
OPAQUE_MAX: Final = 32
# The first letters memcached 1.6 knows as flags (any command accepts any of them), plus `E`
# (explicit CAS, memcached 1.6.21). Anything else is "CLIENT_ERROR invalid flag".
_KNOWN_FLAGS: Final = frozenset(b"bNTRlOPLkstcfvhuqFCMJDIE")
# What a mg that changes the item needs: its expiry (T, N) or its CAS (E) is a write, as
# the text gat is.
_MG_WRITE: Final = frozenset(b"TNE")

_INVALID_ERROR: Final = Invalid(replies.ERROR)
_BAD_FORMAT: Final = Invalid(replies.BAD_FORMAT)
_BAD_TOKEN: Final = b"CLIENT_ERROR bad token in command line format\r\n"
_DUPLICATE: Final = b"CLIENT_ERROR duplicate flag\r\n"
_INVALID_FLAG: Final = b"CLIENT_ERROR invalid flag\r\n"
_BAD_KEY: Final = b"CLIENT_ERROR error decoding key\r\n"
_BAD_MODE_LENGTH: Final = b"CLIENT_ERROR incorrect length for M token\r\n"
_BAD_INITIAL: Final = b"CLIENT_ERROR invalid numeric initial value\r\n"
_BAD_DELTA: Final = b"CLIENT_ERROR invalid numeric delta value\r\n"
_INVALID_OR_DUPLICATE: Final = Invalid(b"CLIENT_ERROR invalid or duplicate flag\r\n")
_MG_TOO_MANY: Final = Invalid(b"CLIENT_ERROR options flags are too long\r\n")
_TOO_MANY: Final = Invalid(replies.META_FLAGS_TOO_LONG)
OPAQUE_TOO_LONG: Final = b"CLIENT_ERROR opaque token too long\r\n"
_MS_BAD_MODE: Final = b"CLIENT_ERROR invalid mode for ms M token\r\n"
_MA_BAD_MODE: Final = Invalid(b"CLIENT_ERROR invalid mode for ma M token\r\n")
# Bytes that make a key other than plain (as in protocol/plain.py): controls and whitespace.
_NOT_PLAIN: Final = re.compile(rb"[\x00-\x20\x7f]")
_MN: Final = META_SPECS[b"mn"]
_SPECS: Final = {verb: META_SPECS[name] for name, verb in _VERBS.items()}
# A mg that changes the item: the same row's needs as a write (the text gat's).
_MG_MODIFYING: Final = CommandSpec("mg", META_SPECS[b"ms"].needs)


class MetaCommand(Record):
    """One meta command, its flags parsed as memcached's _meta_flag_preparse parses them.
    `flags` keeps the flag tokens in the order sent: replies echo them in that order."""

    __slots__ = (
        "binary",
        "compare_cas",
        "delta",
        "explicit_cas",
        "flags",
        "initial",
        "invalidate",
        "key",
        "late_error",
        "mode",
        "new_ttl",
        "no_bump",
        "quiet",
        "recache_ttl",
        "spec",
        "user_flags",
        "value",
        "verb",
        "vivify_ttl",
        "want_value",
    )

    def __init__(self, verb: int, key: bytes, flags: list[bytes], spec: CommandSpec) -> None:
        self.verb: Final = verb
        self.key = key
        self.flags: Final = flags
        self.spec = spec
        self.binary = False  # the key came base64-encoded (`b`)
        self.quiet = False  # `q`
        self.want_value = False  # `v`
        self.no_bump = False  # `u`
        self.invalidate = False  # `I`
        self.new_ttl: int | None = None  # `T<ttl>`
        self.vivify_ttl: int | None = None  # `N<ttl>`
        self.recache_ttl: int | None = None  # `R<ttl>`
        self.compare_cas: int | None = None  # `C<cas>`
        self.explicit_cas: int | None = None  # `E<cas>`
        self.user_flags = 0  # `F<flags>`
        self.mode = 0  # `M<mode>`: the mode's byte, 0 when absent
        self.delta = 1  # `D<delta>`
        self.initial = 0  # `J<initial>`
        self.value = b""  # the data block of `ms`
        # An error memcached only finds while it answers (an opaque token over OPAQUE_MAX
        # in mg and ma): answered at that point, after the lookup, as it does.
        self.late_error = b""

    def _values(self) -> tuple[object, ...]:
        return (self.verb, self.key, self.flags, self.value)


def _preparse(command: MetaCommand) -> bytes:
    """memcached's _meta_flag_preparse over the flag tokens: b"" when they are valid, else
    the error it answers (a duplicate or unknown flag stops it; any other error is kept,
    the last one winning, while the remaining flags are still read)."""
    seen: set[int] = set()
    error = b""
    for token in command.flags:
        letter = token[0]
        if letter >= 127 or letter in seen:
            return _DUPLICATE
        seen.add(letter)
        if letter not in _KNOWN_FLAGS:
            return _INVALID_FLAG
        argument = token[1:]
        if letter == 98:  # b
            command.binary = True
            try:
                decoded = binascii.a2b_base64(command.key, strict_mode=True)
            except binascii.Error:
                decoded = b""
            if not decoded:
                error = _BAD_KEY
            command.key = decoded
        elif letter == 78 or letter == 84 or letter == 82:  # N T R
            parsed = signed(argument)
            # memcached's safe_strtol stores a long into an int32_t: it wraps.
            ttl = 0 if parsed is None else ((parsed + (1 << 31)) & UINT32_MAX) - (1 << 31)
            if parsed is None:
                error = _BAD_TOKEN
            elif letter == 78:
                command.vivify_ttl = ttl
            elif letter == 84:
                command.new_ttl = ttl
            else:
                command.recache_ttl = ttl
        elif letter == 118:  # v
            command.want_value = True
        elif letter == 117:  # u
            command.no_bump = True
        elif letter == 113:  # q
            command.quiet = True
        elif letter == 73:  # I
            command.invalidate = True
        elif letter == 70:  # F
            # memcached's safe_strtoul into a uint32_t: a 64-bit number, truncated.
            user_flags = unsigned(argument, UINT64_MAX)
            if user_flags is None:
                error = error or replies.BAD_FORMAT  # memcached keeps the error it had
            else:
                command.user_flags = user_flags & UINT32_MAX
        elif letter == 67 or letter == 69:  # C E
            cas = unsigned(argument, UINT64_MAX)
            if cas is None:
                error = _BAD_TOKEN
            elif letter == 67:
                command.compare_cas = cas
            else:
                command.explicit_cas = cas
        elif letter == 77:  # M
            if len(token) != 2:
                error = _BAD_MODE_LENGTH
            else:
                command.mode = token[1]
        elif letter == 74 or letter == 68:  # J D
            number = unsigned(argument, UINT64_MAX)
            if number is None:
                error = _BAD_INITIAL if letter == 74 else _BAD_DELTA
            elif letter == 74:
                command.initial = number
            else:
                command.delta = number
    return error


def _opaque_too_long(flags: list[bytes]) -> bool:
    return any(token[0] == 79 and len(token) > OPAQUE_MAX for token in flags)  # O


def parse_meta(tokens: list[bytes]) -> MetaCommand | Invalid | None:
    """A meta line other than `ms`: its command, memcached's error, or None when its first
    token is no meta verb."""
    verb = _VERBS.get(tokens[0], 0)
    if verb == 0 or verb == MS:
        return None
    count = len(tokens)
    if verb == MN:
        return MetaCommand(MN, b"", [], _MN)
    if verb == ME:
        if count < 2 or len(tokens[1]) > KEY_MAX_LENGTH:
            return _BAD_FORMAT
        command = MetaCommand(ME, tokens[1], [], _SPECS[ME])
        if count >= 3 and tokens[2] == b"b":
            command.binary = True
            try:
                command.key = binascii.a2b_base64(command.key, strict_mode=True)
            except binascii.Error:
                command.key = b""
            if not command.key:
                return _BAD_FORMAT
        return command
    if count < 2:
        return _INVALID_ERROR
    if len(tokens[1]) > KEY_MAX_LENGTH:
        return _BAD_FORMAT
    # memcached counts the tokens and a terminal one: `count + 1 > 20` is refused.
    if count >= META_TOKENS_MAX:
        return _MG_TOO_MANY if verb == MG else _TOO_MANY
    command = MetaCommand(verb, tokens[1], tokens[2:], _SPECS[verb])
    error = _preparse(command)
    if error:
        return Invalid(error) if verb == MG else _INVALID_OR_DUPLICATE
    if verb == MG:
        for token in command.flags:
            if token[0] in _MG_WRITE:
                command.spec = _MG_MODIFYING
                break
        if _opaque_too_long(command.flags):
            command.late_error = OPAQUE_TOO_LONG
    elif verb == MD:
        if _opaque_too_long(command.flags):
            return Invalid(OPAQUE_TOO_LONG)
    else:  # ma
        mode = command.mode
        if mode != 0 and mode not in b"I+D-":
            return _MA_BAD_MODE
        if _opaque_too_long(command.flags):
            command.late_error = OPAQUE_TOO_LONG
    return command


def parse_meta_set(tokens: list[bytes], length: int) -> tuple[MetaCommand | None, bytes]:
    """The line of `ms <key> <datalen> <flag>*` whose length is valid: the command, or the
    error to answer after skipping its `length` bytes of data (memcached's conn_swallow)."""
    command = MetaCommand(MS, tokens[1], tokens[3:], _SPECS[MS])
    error = _preparse(command)
    if error:
        return None, error
    mode = command.mode
    if mode != 0 and mode not in b"EAPRS":
        return None, _MS_BAD_MODE
    if _opaque_too_long(command.flags):
        return None, OPAQUE_TOO_LONG
    return command, b""


def plain_meta_get_key(data: bytes) -> bytes | None:
    """The key of a read that is exactly one `mg <key> v` line with a plain key (the most
    frequent meta read, answered without the parser); None for anything else."""
    size = len(data)
    if size < 8 or not data.endswith(b" v\r\n"):
        return None
    key = data[3 : size - 4]
    if len(key) > KEY_MAX_LENGTH or _NOT_PLAIN.search(key) is not None:
        return None
    return key
