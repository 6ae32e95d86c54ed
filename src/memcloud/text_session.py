"""A text-protocol connection: parse what arrived, execute every whole command, answer all
of them in one write. No await and no I/O per command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from memcloud.auth import ANONYMOUS_CREDENTIAL_ID, Directory
from memcloud.auth_throttle import address_of
from memcloud.gate import ALLOWED, LOGIN, NO_FLUSH, NO_WRITE, allowed
from memcloud.meta_session import execute_meta, meta_get_plain
from memcloud.protocol import replies
from memcloud.protocol.commands import (
    Arith,
    Close,
    Command,
    Delete,
    FlushAll,
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
from memcloud.protocol.limits import AUTH_VALUE_MAX
from memcloud.protocol.meta import MetaCommand, plain_meta_get_key
from memcloud.protocol.plain import plain_get_key, plain_set
from memcloud.protocol.replies import (
    CRLF,
    CRLF_END,
    VALUE_PREFIX,
    render_stats,
    render_value,
    value_suffix,
)
from memcloud.protocol.specs import META_SPECS, TEXT_SPECS, text_spec
from memcloud.protocol.text import NEED_DATA, TextParser
from memcloud.service import REPLY_BATCH_MAX, Service, Session
from memcloud.stats.report import MEMCACHED_VERSION
from memcloud.storage.cache import Cache
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult

__all__ = ["TextSession"]

# The storage mode of each store verb, paired by name (see StoreVerb).
_MODES: Final = {verb: StoreMode[verb.name] for verb in StoreVerb}
_STORE_REPLIES: Final = {
    StoreResult.STORED: replies.STORED,
    StoreResult.NOT_STORED: replies.NOT_STORED,
    StoreResult.EXISTS: replies.EXISTS,
    StoreResult.NOT_FOUND: replies.NOT_FOUND,
    StoreResult.TOO_LARGE: replies.TOO_LARGE,
    StoreResult.NO_MEMORY: replies.OUT_OF_MEMORY,
}
# append/prepend growing an item past the item limit: memcached answers NOT_STORED.
_GROWTH_REPLIES: Final = {**_STORE_REPLIES, StoreResult.TOO_LARGE: replies.NOT_STORED}
# What a `stats` reply is counted as against the batch (its real size is about 2 KiB).
_STATS_REPLY_ESTIMATE: Final = 4096
_VERSION: Final = f"VERSION {MEMCACHED_VERSION}\r\n".encode()
# The rows the fast paths ask the gate for: a plain get's, and a plain (or too large) set's.
_GET: Final = TEXT_SPECS[b"get"]
_SET: Final = TEXT_SPECS[b"set"]
_MG: Final = META_SPECS[b"mg"]


class TextSession(Session):
    def __init__(self, service: Service, peer: str, close: Callable[[], None]) -> None:
        super().__init__(service, peer, close)
        self.parser = TextParser(service.settings.item_size_max)
        self.parser.authenticating = self.principal is None
        # On a server with --anonymous-cache a connection starts logged in to that cache,
        # and a `set` carrying a credential is a login, never an item (see _login_set).
        # The usernames of the control plane while the connection is the anonymous one
        # (kept current by refresh), else None: one attribute read per plain read.
        principal = self.principal
        anonymous = principal is not None and principal.credential_id == ANONYMOUS_CREDENTIAL_ID
        self._usernames = service.directory.usernames if anonymous else None
        self._now = service.clock.now
        self._batch = 0  # reply bytes of values and stats in this call
        self._rest: Retrieve | None = None  # keys of a multi-get not yet answered

    def handle(self, data: bytes) -> bytes:
        """Everything one read brings, answered as one block of bytes (at most about
        REPLY_BATCH_MAX; the rest is the backlog)."""
        cache = self.cache
        out: list[bytes] = []
        now = self._now()
        self._batch = 0
        self.backlog = False
        unparsed = data
        head = data[:4]
        # A read that starts like this may hold plain requests (see _plain_requests). Two
        # comparisons: a set lookup would hash `head` on every read.
        plain = head == b"get " or head == b"set "
        if (
            plain
            and self._rest is None
            and self.parser.idle
            and allowed(self.capabilities, _GET) == ALLOWED
        ):
            # Plain gets and sets (the most frequent requests, alone or pipelined) are
            # answered straight from the read, up to the first line that is anything else.
            assert cache is not None  # a session that may read is logged in to a cache
            eol = data.find(b"\r\n")
            key = plain_get_key(data, 0, eol) if head == b"get " else None
            if key is not None and eol == len(data) - 2:
                # A read of exactly one plain get: the most frequent of all.
                return self.account(cache, data, _get_reply(cache, key, now))
            if key is not None or head == b"set ":
                done = self._plain_requests(cache, data, now, out)
                if done == len(data):
                    return self.account(cache, data, b"".join(out))
                unparsed = data[done:]
        elif head.startswith(b"mg ") and self._rest is None and self.parser.idle:
            # A read of exactly one `mg <key> v` (protocol/meta.py), as the plain get above.
            key = plain_meta_get_key(data)
            if key is not None and allowed(self.capabilities, _MG) == ALLOWED:
                assert cache is not None
                return self.account(cache, data, meta_get_plain(cache, key, now))
        parser = self.parser
        parser.receive_data(unparsed)
        if self._rest is not None:
            # The rest of a multi-get: asked for again, as the principal may have changed.
            rest, self._rest = self._rest, None
            verdict = allowed(self.capabilities, text_spec(rest))
            if verdict == ALLOWED:
                self._retrieve_keys(rest, now, out)
            else:
                self._refuse(rest, verdict, now, out)
        next_command = parser.next_command
        while not self.closing and not self.backlog:
            command = next_command()
            if command is NEED_DATA:
                break
            spec = command.spec if isinstance(command, MetaCommand) else text_spec(command)
            verdict = allowed(self.capabilities, spec)
            if verdict == ALLOWED:
                _HANDLERS[type(command)](self, command, now, out)
            else:
                self._refuse(command, verdict, now, out)
        return self.account(self.cache or cache, data, b"".join(out))

    def _plain_requests(self, cache: Cache, data: bytes, now: float, out: list[bytes]) -> int:
        """Answer the leading plain gets and sets (see `plain_get_key`, `plain_set`); the
        rest is left to the parser. Answers how many bytes were handled."""
        pos = 0
        size = len(data)
        may_write = allowed(self.capabilities, _SET) == ALLOWED
        item_size_max = cache.item_size_max
        # Only an anonymous connection has sets that may be logins (see _names_login).
        usernames = self._usernames
        batch = 0
        while pos < size and batch <= REPLY_BATCH_MAX:
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                break
            key = plain_get_key(data, pos, eol)
            if key is not None:
                reply = _get_reply(cache, key, now)
                out.append(reply)
                batch += len(reply)
                pos = eol + 2
                continue
            fields = plain_set(data, pos, eol, item_size_max) if may_write else None
            if fields is None:
                break
            key, flags, exptime, start, end, noreply = fields
            value = data[start:end]
            # (`32 in value`, not `b" " in value`: bytes' `in` first tries its argument as an
            # int, and a bytes one costs a raised and cleared TypeError, some 400 ns.)
            if usernames is not None and (
                key in usernames or (32 in value and _names_user(value, usernames))
            ):
                break  # a login: the parser's path answers it (see _store)
            result, _ = cache.store(StoreMode.SET, key, value, flags, exptime, now)
            if not noreply:  # which silences errors too, as in the parser's path
                out.append(_STORE_REPLIES[result])
            pos = end + 2
        self._batch = batch
        # Past the batch limit, the rest waits in the parser as the session's backlog.
        self.backlog = batch > REPLY_BATCH_MAX
        return pos

    def refresh(self, directory: Directory) -> None:
        super().refresh(directory)
        if self._usernames is not None:
            self._usernames = directory.usernames

    # -- what the gate refuses -----------------------------------------------------------

    def _refuse(
        self, command: Command | object, verdict: int, now: float, out: list[bytes]
    ) -> None:
        """Answer a command the gate did not allow, in memcached's words where it has them."""
        if verdict == LOGIN:  # a `set` before authentication carries a credential
            assert isinstance(command, Store)
            if self._answer_login(command, now, out):
                self.parser.authenticating = False
        elif verdict == NO_WRITE:
            if isinstance(command, Store):
                # As memcached -Y answers a store it refuses; counted as a set.
                cache = self.cache
                assert cache is not None
                cache.refuse_store()
                if not command.noreply:
                    out.append(replies.NOT_STORED)
            elif isinstance(command, Retrieve) or not _noreply(command):  # gat has none
                out.append(replies.NO_WRITE)
        elif verdict == NO_FLUSH:
            if not _noreply(command):
                out.append(replies.NO_FLUSH)
        elif self.full:  # not logged in: an anonymous cache at its connection limit
            out.append(replies.TOO_MANY_CONNECTIONS)
            self.closing = True
        else:  # not logged in (or, deny by default, a command without a row)
            out.append(replies.UNAUTHENTICATED)

    def _login_with(self, key: bytes, value: bytes, now: float) -> bool:
        """The login `set`, slowed down after repeated failures from the same address prefix
        or on the same username (auth_throttle; binary SASL follows the same rule)."""
        # memcached's -Y form puts "username password" in the value; the hosted service's
        # form puts the username in the key and the password in the value.
        if b" " in value:
            username, _, password = value.partition(b" ")
            if self.service.directory.cache_of(username) is not None:
                key, value = username, password.strip()
        throttle = self.service.auth_throttle
        address = address_of(self.peer)
        name = key.decode("utf-8", "replace")
        admission = throttle.admit(address, now, name)
        self.reply_delay = max(self.reply_delay, admission.delay)
        if not admission.check:
            return False
        if self.try_login(key, value):
            return True
        if not self.full:  # a login refused for the connection limit guessed nothing
            throttle.failed(address, now, name)
        return False

    def _names_login(self, key: bytes, value: bytes) -> bool:
        """Whether a `set` on an anonymous connection is a text login: its key is a known
        username (the hosted form), or its value is `<known username> <password>`
        (memcached's -Y form). A set lookup, and the value is looked at only when short."""
        usernames = self._usernames
        return usernames is not None and (key in usernames or _names_user(value, usernames))

    def _login_set(self, command: Store, now: float, out: list[bytes]) -> None:
        """A login `set` on an anonymous connection: as binary SASL does there, it moves
        the connection to the credential's cache; it stores nothing, and its answer never
        holds the secret. A wrong password answers as a failed login, counted and slowed
        down as one, and the connection stays on the anonymous cache."""
        anonymous_cache = self.cache
        if self._answer_login(command, now, out):
            self._usernames = None
            if anonymous_cache is not None:
                anonymous_cache.stats.disconnected()

    def _answer_login(self, command: Store, now: float, out: list[bytes]) -> bool:
        """Try a login `set` and answer it: STORED (unless noreply), memcached's refusal and
        a close when the right credential's cache is at its connection limit, or the failed
        login's error (never silenced: the client must learn it is not logged in)."""
        if self._login_with(command.key, command.value, now):
            if not command.noreply:
                out.append(replies.STORED)
            return True
        if self.full:
            out.append(replies.TOO_MANY_CONNECTIONS)
            self.closing = True
        else:
            out.append(replies.AUTH_FAILED)
        return False

    # -- commands ------------------------------------------------------------------------

    def _retrieve(self, command: Retrieve, now: float, out: list[bytes]) -> None:
        self._retrieve_keys(command, now, out)

    def _retrieve_keys(self, command: Retrieve, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        with_cas = command.with_cas
        exptime = command.exptime
        keys = command.keys
        batch = self._batch
        if exptime is None:
            hits, done = cache.get_many(keys, now, REPLY_BATCH_MAX - batch)
            append = out.append
            for key, item in hits:
                value = item.value
                batch += len(value)
                if with_cas:
                    append(replies.VALUE_CAS % (key, item.flags, len(value), item.cas, value))
                else:
                    suffix = value_suffix(item.flags, len(value))
                    out.extend((VALUE_PREFIX, key, suffix, value, CRLF))
        else:
            done = 0
            for key in keys:
                if batch > REPLY_BATCH_MAX:
                    break
                done += 1
                touched = cache.gat(key, exptime, now)
                if touched is not None:
                    value = touched.value
                    batch += len(value)
                    cas = touched.cas if with_cas else None
                    out.append(render_value(key, touched.flags, value, cas))
        self._batch = batch
        if done < len(keys):
            # The rest of this multi-get is answered in the next call.
            self._rest = Retrieve(keys[done:], with_cas, exptime)
            self.backlog = True
            return
        if batch > REPLY_BATCH_MAX:
            self.backlog = True
        out.append(replies.END)

    def _store(self, command: Store, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        if (
            self._usernames is not None
            and command.verb is StoreVerb.SET
            and self._names_login(command.key, command.value)
        ):
            self._login_set(command, now, out)
            return
        verb, key, noreply = command.verb, command.key, command.noreply
        result, _ = cache.store(
            _MODES[verb],
            key,
            command.value,
            command.flags,
            command.exptime,
            now,
            command.cas_unique,
        )
        # Under noreply nothing is sent, errors included, as memcached 1.6 does: a reply
        # the client does not wait for would put every later reply out of step.
        if not noreply:
            table = (
                _GROWTH_REPLIES
                if verb is StoreVerb.APPEND or verb is StoreVerb.PREPEND
                else _STORE_REPLIES
            )
            out.append(table[result])

    def _delete(self, command: Delete, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        result = cache.delete(command.key, now)
        if not command.noreply:
            out.append(replies.DELETED if result is DeleteResult.DELETED else replies.NOT_FOUND)

    def _arith(self, command: Arith, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        result = cache.arith(command.key, command.delta, command.incr, now)
        if command.noreply:
            return
        if result is ArithResult.NON_NUMERIC:
            out.append(replies.NON_NUMERIC)
        elif isinstance(result, int):
            out.append(b"%d\r\n" % result)
        else:
            out.append(replies.NOT_FOUND)

    def _touch(self, command: Touch, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        item = cache.touch(command.key, command.exptime, now)
        if not command.noreply:
            out.append(replies.NOT_FOUND if item is None else replies.TOUCHED)

    def _flush_all(self, command: FlushAll, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        service = self.service
        service.flush(cache.id, service.flush_event(self, cache.id, "text"), command.delay, now)
        if not command.noreply:
            out.append(replies.OK)

    def _stats(self, command: Stats, now: float, out: list[bytes]) -> None:
        group = command.args[0] if command.args else b""
        self._batch += _STATS_REPLY_ESTIMATE
        if self._batch > REPLY_BATCH_MAX:
            self.backlog = True
        if group == b"reset":
            self.stats_lines(group, now)
            out.append(replies.RESET)
        elif group == b"detail":
            # Per-prefix stats are not kept; the switch is accepted as memcached does.
            arg = command.args[1] if len(command.args) > 1 else b""
            if arg == b"on" or arg == b"off":
                out.append(replies.OK)
            elif arg == b"dump":
                out.append(replies.END)
            else:
                out.append(replies.STATS_DETAIL_USAGE)
        else:
            lines = self.stats_lines(group, now)
            out.append(replies.ERROR if lines is None else render_stats(lines))

    def _meta(self, command: MetaCommand, now: float, out: list[bytes]) -> None:
        self._batch += execute_meta(self, command, now, out)
        if self._batch > REPLY_BATCH_MAX:
            self.backlog = True

    def _version(self, command: Version, now: float, out: list[bytes]) -> None:
        out.append(_VERSION)

    def _verbosity(self, command: Verbosity, now: float, out: list[bytes]) -> None:
        if not command.noreply:
            out.append(replies.OK)

    def _quit(self, command: Quit, now: float, out: list[bytes]) -> None:
        self.closing = True

    def _close_after(self, command: Close, now: float, out: list[bytes]) -> None:
        # Nothing after this line runs: `handle` stops at `closing`, and the connection
        # closes once the replies before it (and this one's, if any) are written.
        self.closing = True
        if command.reply:
            out.append(command.reply)

    def _invalid(self, command: Invalid, now: float, out: list[bytes]) -> None:
        if command.unlink is not None:
            # A too-large `set`, counted as one; it drops the old value if it may write.
            verdict = allowed(self.capabilities, _SET)
            cache = self.cache
            if cache is not None and verdict in (ALLOWED, NO_WRITE):
                cache.refuse_too_large(command.unlink if verdict == ALLOWED else None)
        if command.reply:
            out.append(command.reply)


def _names_user(value: bytes, usernames: frozenset[bytes]) -> bool:
    """Whether a set's value is memcached's -Y login, `<known username> <password>`."""
    if len(value) > AUTH_VALUE_MAX:
        return False
    space = value.find(b" ")
    return space > 0 and value[:space] in usernames


def _noreply(command: object) -> bool:
    """A refused command's noreply (only refusals read it: no per-command cost)."""
    return isinstance(command, (Store, Delete, Arith, Touch, FlushAll)) and command.noreply


def _get_reply(cache: Cache, key: bytes, now: float) -> bytes:
    """The whole reply to a single-key `get`."""
    item = cache.get(key, now)
    if item is None:
        return replies.END
    value = item.value
    suffix = value_suffix(item.flags, len(value))
    return b"".join((VALUE_PREFIX, key, suffix, value, CRLF_END))


_HANDLERS: dict[type, Callable[[TextSession, object, float, list[bytes]], None]] = {
    Retrieve: TextSession._retrieve,  # type: ignore[dict-item]
    Store: TextSession._store,  # type: ignore[dict-item]
    Delete: TextSession._delete,  # type: ignore[dict-item]
    Arith: TextSession._arith,  # type: ignore[dict-item]
    Touch: TextSession._touch,  # type: ignore[dict-item]
    FlushAll: TextSession._flush_all,  # type: ignore[dict-item]
    Stats: TextSession._stats,  # type: ignore[dict-item]
    Version: TextSession._version,  # type: ignore[dict-item]
    Verbosity: TextSession._verbosity,  # type: ignore[dict-item]
    Quit: TextSession._quit,  # type: ignore[dict-item]
    Close: TextSession._close_after,  # type: ignore[dict-item]
    Invalid: TextSession._invalid,  # type: ignore[dict-item]
    MetaCommand: TextSession._meta,  # type: ignore[dict-item]
}
