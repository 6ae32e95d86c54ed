"""memcached's text protocol, sans-IO: `receive_data(bytes)`, then `next_command()` until it
answers NEED_DATA. Malformed input becomes an `Invalid` command carrying memcached's reply, so
the caller only ever sees commands, and the connection stays in step with the client.

Beside it: `numbers` (memcached's rules for a token's number), `guards` (the lines that
close the connection) and `plain` (the plain get and set the session answers straight away).
"""

from __future__ import annotations

import re
from typing import Final

from memcloud.protocol import replies
from memcloud.protocol.commands import (
    Admin,
    Arith,
    Command,
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
from memcloud.protocol.guards import HANG_UP, RETRIEVAL_PREFIXES, is_http_request_line, too_long
from memcloud.protocol.limits import (
    AUTH_VALUE_MAX,
    KEY_MAX_LENGTH,
    LINE_MAX,
    LINE_WAIT_JOIN,
    META_TOKENS_MAX,
    RETRIEVAL_LINE_MAX,
    UINT32_MAX,
    UINT64_MAX,
    VALUE_LENGTH_MAX,
)
from memcloud.protocol.meta import MetaCommand, parse_meta, parse_meta_set
from memcloud.protocol.numbers import signed, unsigned
from memcloud.protocol.prefix import prefix_error
from memcloud.protocol.specs import ADMIN_VERBS, TEXT_SPECS, CommandSpec

__all__ = ["NEED_DATA", "TextParser"]


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

# Bytes that may not stand in a key (split() already removed the whitespace ones).
_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")
# The same, for a whole command line: deleting them with translate and comparing lengths
# is about three times faster than the regex on a multi-get's line.
_CONTROL_BYTES: Final = bytes(range(0x20)) + b"\x7f"
_STORE_VERBS: Final = {
    b"set": StoreVerb.SET,
    b"add": StoreVerb.ADD,
    b"replace": StoreVerb.REPLACE,
    b"append": StoreVerb.APPEND,
    b"prepend": StoreVerb.PREPEND,
    b"cas": StoreVerb.CAS,
}
_NOREPLY: Final = b"noreply"
_INVALID_ERROR: Final = Invalid(replies.ERROR)
_INVALID_FORMAT: Final = Invalid(replies.BAD_FORMAT)
# What a refused command answers under `noreply`: nothing (memcached 1.6 stays silent too).
_SILENT: Final = Invalid(b"")
# The commands memcloud implements besides the storage ones: a line of one of them with a
# control character is a bad command line, not an unknown command.
_OTHER_VERBS: Final = frozenset(TEXT_SPECS) - frozenset(_STORE_VERBS)
# The arity of each command: its row of the command table (protocol/specs.py).
_STORE_SPECS: Final = {verb: TEXT_SPECS[name] for name, verb in _STORE_VERBS.items()}
_GET_SPEC: Final = TEXT_SPECS[b"get"]
_DELETE_SPEC: Final = TEXT_SPECS[b"delete"]
_ARITH_SPEC: Final = TEXT_SPECS[b"incr"]
_TOUCH_SPEC: Final = TEXT_SPECS[b"touch"]
_GAT_SPEC: Final = TEXT_SPECS[b"gat"]
_FLUSH_ALL_SPEC: Final = TEXT_SPECS[b"flush_all"]
_FLUSH_PREFIX_SPEC: Final = TEXT_SPECS[b"flush_prefix"]
_VERBOSITY_SPEC: Final = TEXT_SPECS[b"verbosity"]


def _arity_ok(spec: CommandSpec, count: int) -> bool:
    return spec.min_tokens <= count <= spec.max_tokens


def _valid_key(key: bytes) -> bool:
    return len(key) <= KEY_MAX_LENGTH


class TextParser:
    """Turns a byte stream into commands. Holds at most one command line and one value."""

    __slots__ = (
        "_buf",
        "_discard_line",
        "_pending",
        "_pending_line",
        "_pending_need",
        "_pos",
        "_slow",
        "_swallow",
        "authenticating",
        "item_size_max",
    )

    def __init__(self, item_size_max: int) -> None:
        self.item_size_max = item_size_max
        # While a connection has not logged in, its `set` carries a credential: some
        # clients send `_` for flags and exptime, and the value must stay small.
        self.authenticating = False
        self._buf = b""
        self._pos = 0
        self._swallow = 0  # bytes of a refused value still to skip
        self._discard_line = False  # skipping the rest of an over-long line
        self._pending: list[bytes] = []  # chunks of a value not yet whole
        self._pending_need = 0  # bytes still to come before the value is whole
        # A long line still without its end also waits as chunks (see _partial_line):
        # re-joining the buffer on every read would cost quadratic time on a slow sender.
        self._pending_line = False
        # Any of the states above: one check per command instead of three.
        self._slow = False

    @property
    def idle(self) -> bool:
        """Nothing held: the next read starts a new command."""
        return not self._slow and self._pos >= len(self._buf)

    @property
    def buffered(self) -> int:
        """Bytes held for commands not yet whole (bounded by the limits)."""
        held = sum(len(chunk) for chunk in self._pending)
        return held + len(self._buf) - self._pos

    def receive_data(self, data: bytes) -> None:
        if self._pending:
            self._pending.append(data)
            if self._pending_line:
                # Whole once the line ends, or once it is too long to be a command.
                self._pending_need -= len(data)
                if b"\n" in data:
                    self._pending_need = 0
            else:
                self._pending_need -= len(data)
            return
        if self._pos >= len(self._buf):
            self._buf = data
        else:
            self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def _wait_for(self, total: int) -> None:
        """Collect chunks without re-joining until `total` unread bytes are here."""
        self._pending = [self._buf[self._pos :]]
        self._pending_need = total - len(self._pending[0])
        self._slow = True

    def _collect(self) -> bool:
        if self._pending_need > 0:
            return False
        self._buf = b"".join(self._pending)
        self._pos = 0
        self._pending = []
        self._pending_line = False
        return True

    def next_command(self) -> Command | MetaCommand | _NeedData:
        if self._slow and not self._settle():
            return NEED_DATA
        buf = self._buf
        pos = self._pos
        eol = buf.find(b"\n", pos)
        if eol < 0:
            return NEED_DATA if pos == len(buf) else self._partial_line(buf, pos)
        end = eol - 1 if eol > pos and buf[eol - 1] == 13 else eol
        if end - pos > LINE_MAX and (
            end - pos > RETRIEVAL_LINE_MAX or not buf.startswith(RETRIEVAL_PREFIXES, pos)
        ):
            self._pos = eol + 1
            return too_long(buf, pos)
        line = buf[pos:end]
        tokens = line.split()
        if not tokens:
            self._pos = eol + 1
            return _INVALID_ERROR
        verb = tokens[0]
        if verb == b"get" and len(tokens) == 2 and len(tokens[1]) <= KEY_MAX_LENGTH:
            # The most frequent command of all, answered without further calls.
            self._pos = eol + 1
            if len(line.translate(None, _CONTROL_BYTES)) != len(line):
                return _INVALID_FORMAT
            return Retrieve(tokens[1:], False, None)
        if len(verb) == 2 and verb[0] == 109:  # `m`: a meta command (protocol/meta.py)
            self._pos = eol + 1
            clean = len(line.translate(None, _CONTROL_BYTES)) == len(line)
            if verb == b"ms":
                return self._meta_set(tokens, pos, clean)
            if not clean:
                return _INVALID_FORMAT
            meta = parse_meta(tokens)
            return _INVALID_ERROR if meta is None else meta
        store_verb = _STORE_VERBS.get(verb)
        if store_verb is not None:
            return self._store(store_verb, tokens, eol + 1)
        self._pos = eol + 1
        if len(line.translate(None, _CONTROL_BYTES)) != len(line):
            return _INVALID_FORMAT if verb in _OTHER_VERBS else self._unknown(tokens, pos)
        return self._other(verb, tokens, pos)

    def _settle(self) -> bool:
        """Finish a pending value, swallow or line discard; False while more must come."""
        if self._pending and not self._collect():
            return False
        if self._swallow and not self._skip_swallowed():
            return False
        if self._discard_line:
            eol = self._buf.find(b"\n", self._pos)
            if eol < 0:
                self._pos = len(self._buf)
                return False
            self._discard_line = False
            self._pos = eol + 1
        self._slow = False
        return True

    def _partial_line(self, buf: bytes, pos: int) -> Command | _NeedData:
        unread = len(buf) - pos
        limit = RETRIEVAL_LINE_MAX if buf.startswith(RETRIEVAL_PREFIXES, pos) else LINE_MAX
        if unread > limit + 2:
            # Refuse the line now and drop the rest of it as it comes: memory stays bounded.
            self._discard_line = self._slow = True
            self._pos = len(buf)
            return too_long(buf, pos)
        if unread > LINE_WAIT_JOIN:
            # A long multi-get still arriving: keep its chunks apart until the line ends.
            self._pending = [buf[pos:]]
            self._pending_line = self._slow = True
            self._pending_need = limit + 3 - unread
        return NEED_DATA

    def _skip_swallowed(self) -> bool:
        available = len(self._buf) - self._pos
        if available < self._swallow:
            self._swallow -= available
            self._pos = len(self._buf)
            return False
        self._pos += self._swallow
        self._swallow = 0
        return True

    def _store(self, verb: StoreVerb, tokens: list[bytes], data_start: int) -> Command | _NeedData:
        is_cas = verb is StoreVerb.CAS
        count = len(tokens)
        spec = _STORE_SPECS[verb]
        if not _arity_ok(spec, count):
            self._pos = data_start
            return _INVALID_ERROR
        noreply = count == spec.max_tokens and tokens[-1] == _NOREPLY
        key, flags_token, exptime_token, length_token = tokens[1], tokens[2], tokens[3], tokens[4]
        cas_unique: int | None = 0
        if (
            length_token.isdigit()
            and flags_token.isdigit()
            and exptime_token.isdigit()
            and len(length_token) < 9
            and len(flags_token) < 10
            and len(exptime_token) < 19
        ):
            # The usual line, plain short numbers: no strtoul rules to apply.
            length = int(length_token)
            flags: int | None = int(flags_token)
            exptime: int | None = int(exptime_token)
        else:
            signed_length = signed(length_token)
            if signed_length is None or signed_length < 0 or signed_length > VALUE_LENGTH_MAX:
                # No length to skip: what follows is read as commands, as memcached does.
                self._pos = data_start
                return _SILENT if noreply else _INVALID_FORMAT
            length = signed_length
            flags, exptime = unsigned(flags_token, UINT32_MAX), signed(exptime_token)
        if self.authenticating:
            # The login `set`: flags and exptime are not looked at (some clients send `_`).
            if length > AUTH_VALUE_MAX:
                return self._refuse_value(data_start, length, replies.AUTH_FAILED)
            flags, exptime, cas_unique = 0, 0, 0
        elif is_cas:
            cas_unique = unsigned(tokens[5], UINT64_MAX)
        if (
            flags is None
            or exptime is None
            or cas_unique is None
            or len(key) > KEY_MAX_LENGTH
            or _CONTROL.search(key)
        ):
            reply = b"" if noreply else replies.BAD_FORMAT
            return self._refuse_value(data_start, length, reply)
        if length + len(key) > self.item_size_max and not self.authenticating:
            # A refused `set` still drops the value it would have replaced (memcached:
            # stale data must not outlive a write the client believes was refused).
            reply = b"" if noreply else replies.TOO_LARGE
            unlink = key if verb is StoreVerb.SET else None
            return self._refuse_value(data_start, length, reply, unlink)
        value_end = data_start + length
        buf = self._buf
        if len(buf) < value_end + 2:
            self._wait_for(value_end + 2 - self._pos)
            return NEED_DATA
        self._pos = value_end + 2
        if buf[value_end : value_end + 2] != b"\r\n":
            # memcached's behaviour: the declared length was wrong; what follows is read
            # as the next command line.
            return _SILENT if noreply else Invalid(replies.BAD_CHUNK)
        return Store(verb, key, flags, exptime, buf[data_start:value_end], cas_unique, noreply)

    def _refuse_value(
        self, data_start: int, length: int, reply: bytes, unlink: bytes | None = None
    ) -> Invalid:
        """Answer `reply` and skip the value block that follows, to stay in step."""
        self._pos = data_start
        self._swallow = length + 2
        self._slow = True
        return Invalid(reply, unlink)

    def _other(self, verb: bytes, tokens: list[bytes], line_start: int) -> Command | _NeedData:
        count = len(tokens)
        if verb == b"get" or verb == b"gets":
            if not _arity_ok(_GET_SPEC, count):
                return _INVALID_ERROR
            keys = tokens[1:]
            for key in keys:
                if len(key) > KEY_MAX_LENGTH:
                    return _INVALID_FORMAT
            return Retrieve(keys, verb == b"gets", None)
        if verb == b"delete":
            return self._delete(tokens)
        if verb == b"incr" or verb == b"decr":
            if not _arity_ok(_ARITH_SPEC, count):
                return _INVALID_ERROR
            noreply = tokens[-1] == _NOREPLY
            if not _valid_key(tokens[1]):
                return _SILENT if noreply else _INVALID_FORMAT
            delta = unsigned(tokens[2], UINT64_MAX)
            if delta is None:
                return _SILENT if noreply else Invalid(replies.INVALID_DELTA)
            return Arith(tokens[1], delta, verb == b"incr", noreply)
        if verb == b"touch":
            if not _arity_ok(_TOUCH_SPEC, count):
                return _INVALID_ERROR
            noreply = tokens[-1] == _NOREPLY
            if not _valid_key(tokens[1]):
                return _SILENT if noreply else _INVALID_FORMAT
            exptime = signed(tokens[2])
            if exptime is None:
                return _SILENT if noreply else Invalid(replies.INVALID_EXPTIME)
            return Touch(tokens[1], exptime, noreply)
        if verb == b"gat" or verb == b"gats":
            # `gat <exptime>` without keys answers END, as memcached does.
            if not _arity_ok(_GAT_SPEC, count):
                return _INVALID_ERROR
            exptime = signed(tokens[1])
            if exptime is None:
                return Invalid(replies.INVALID_EXPTIME)
            keys = tokens[2:]
            for key in keys:
                if len(key) > KEY_MAX_LENGTH:
                    return _INVALID_FORMAT
            return Retrieve(keys, verb == b"gats", exptime)
        if verb == b"flush_all":
            return self._flush_all(tokens)
        if verb == b"flush_prefix":
            return self._flush_prefix(tokens)
        if verb == b"stats":
            return Stats(tuple(tokens[1:]))
        if verb == b"version":
            return Version()
        if verb == b"verbosity":
            if not _arity_ok(_VERBOSITY_SPEC, count):
                return _INVALID_ERROR
            noreply = tokens[-1] == _NOREPLY
            if unsigned(tokens[1], UINT64_MAX) is None:
                return _SILENT if noreply else _INVALID_FORMAT
            return Verbosity(noreply)
        if verb == b"quit":
            return Quit()
        if verb in ADMIN_VERBS:
            spec = TEXT_SPECS[verb]
            if not _arity_ok(spec, count):
                return _INVALID_ERROR
            return Admin(verb, tuple(tokens[1:]))
        return self._unknown(tokens, line_start)

    def _unknown(self, tokens: list[bytes], line_start: int) -> Command | _NeedData:
        """A command memcloud does not implement: ERROR, except for an HTTP request line,
        after which reading on would run bytes the client did not send as commands."""
        if is_http_request_line(tokens):
            return HANG_UP  # silently, as memcached does
        return _INVALID_ERROR

    def _meta_set(
        self, tokens: list[bytes], line_start: int, clean: bool
    ) -> Command | MetaCommand | _NeedData:
        """`ms <key> <datalen> <flag>*`, with memcached's answers in its order; a refused
        line whose length is known has its data block skipped (memcached's conn_swallow)."""
        count = len(tokens)
        if count < 3:
            # No key at all is an unknown command; a key without a length, a bad line.
            return _INVALID_ERROR if count < 2 else _INVALID_FORMAT
        length = signed(tokens[2])
        if length is None or length < 0 or length > VALUE_LENGTH_MAX:
            # No length to skip: what follows is read as commands, as memcached does.
            return _INVALID_FORMAT
        data_start = self._pos
        if len(tokens[1]) > KEY_MAX_LENGTH or not clean:
            # memcached reads the block as commands here; memcloud skips it (as for `set`).
            return self._refuse_value(data_start, length, replies.BAD_FORMAT)
        if count >= META_TOKENS_MAX:
            return self._refuse_value(data_start, length, replies.META_FLAGS_TOO_LONG)
        if self.authenticating:
            # Not logged in: answered as any command before login, and the block is
            # skipped as it arrives, never held.
            return self._refuse_value(data_start, length, replies.UNAUTHENTICATED)
        command, error = parse_meta_set(tokens, length)
        if command is None:
            return self._refuse_value(data_start, length, error)
        if length + len(command.key) > self.item_size_max:
            # memcached drops the old value whatever the mode (stale data must not outlive
            # a write the client believes was refused).
            return self._refuse_value(data_start, length, replies.TOO_LARGE, command.key)
        value_end = data_start + length
        buf = self._buf
        if len(buf) < value_end + 2:
            # Within the item limit, as a `set` value waits: the line is read again then.
            self._pos = line_start
            self._wait_for(value_end + 2 - line_start)
            return NEED_DATA
        self._pos = value_end + 2
        if buf[value_end : value_end + 2] != b"\r\n":
            return Invalid(replies.BAD_CHUNK)
        command.value = buf[data_start:value_end]
        return command

    @staticmethod
    def _delete(tokens: list[bytes]) -> Command:
        count = len(tokens)
        if not _arity_ok(_DELETE_SPEC, count):
            return _INVALID_ERROR
        key = tokens[1]
        noreply = count > 2 and tokens[-1] == _NOREPLY
        extra = tokens[2 : count - 1 if noreply else count]
        # memcached still accepts the legacy `delete <key> 0`, and nothing else there.
        if extra and extra != [b"0"]:
            return _SILENT if noreply else Invalid(replies.BAD_DELETE_FORMAT)
        if not _valid_key(key):
            return _SILENT if noreply else _INVALID_FORMAT
        return Delete(key, noreply)

    @staticmethod
    def _flush_prefix(tokens: list[bytes]) -> Command:
        # memcloud's extension: `flush_prefix <prefix> [noreply]`, the prefix a key's start.
        count = len(tokens)
        if not _arity_ok(_FLUSH_PREFIX_SPEC, count):
            return _INVALID_ERROR
        noreply = count == 3 and tokens[2] == _NOREPLY
        if (count == 3 and not noreply) or prefix_error(tokens[1]) is not None:
            return _SILENT if noreply else _INVALID_FORMAT
        return FlushPrefix(tokens[1], noreply)

    @staticmethod
    def _flush_all(tokens: list[bytes]) -> Command:
        # memcached's rules: up to two arguments; unless the only one is `noreply`, the
        # first is the delay (a third token, if not `noreply`, is ignored).
        count = len(tokens)
        if not _arity_ok(_FLUSH_ALL_SPEC, count):
            return _INVALID_ERROR
        noreply = count > 1 and tokens[-1] == _NOREPLY
        delay = 0
        if count != (2 if noreply else 1):
            parsed = signed(tokens[1])
            if parsed is None:
                return _SILENT if noreply else Invalid(replies.INVALID_EXPTIME)
            delay = parsed
        return FlushAll(delay, noreply)
