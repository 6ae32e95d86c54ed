"""A text-protocol connection: parse what arrived, execute every whole command, answer all
of them in one write. No await and no I/O per command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from memcloud.admin_commands import STATS_GROUPS, admin_command, admin_stats
from memcloud.gate import ALLOWED, NO_WRITE, allowed
from memcloud.meta_session import execute_meta, meta_get_plain
from memcloud.protocol import replies
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
from memcloud.protocol.forms import (
    arith_line,
    delete_line,
    store_line,
    touch_line,
)
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
from memcloud.protocol.text import NEED_DATA
from memcloud.routing import FORWARDED, PROTOCOL_TEXT, CheckedChange
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.stats.report import MEMCACHED_VERSION
from memcloud.storage.cache import PREFIX_SCAN_SLICE, Cache
from memcloud.storage.prefix_flush import TooManyPrefixFlushes
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult
from memcloud.text_admin import TextAdmin
from memcloud.text_forwarding import meta_made
from memcloud.text_login import names_user

__all__ = ["TextSession"]

# The storage mode of each store verb (see StoreVerb), and its replies (append/prepend past
# the item limit: NOT_STORED, as memcached answers).
_MODES: Final = {verb: StoreMode[verb.name] for verb in StoreVerb}
_STORE_REPLIES: Final = {
    StoreResult.STORED: replies.STORED,
    StoreResult.NOT_STORED: replies.NOT_STORED,
    StoreResult.EXISTS: replies.EXISTS,
    StoreResult.NOT_FOUND: replies.NOT_FOUND,
    StoreResult.TOO_LARGE: replies.TOO_LARGE,
    StoreResult.NO_MEMORY: replies.OUT_OF_MEMORY,
}
_GROWTH_REPLIES: Final = {**_STORE_REPLIES, StoreResult.TOO_LARGE: replies.NOT_STORED}
# What a `stats` reply is counted as against the batch (its real size is about 2 KiB).
_STATS_REPLY_ESTIMATE: Final = 4096
# Each key a `flush_prefix` scans at once (a small cache's) counts as a short get reply
# against the batch: a pipeline of them yields the loop as one of multi-gets does.
_PREFIX_SCAN_KEY_ESTIMATE: Final = 64
_VERSION: Final = f"VERSION {MEMCACHED_VERSION}\r\n".encode()
# The rows the fast paths ask the gate for: a plain get's, a plain set's, a plain mg's.
_GET: Final = TEXT_SPECS[b"get"]
_SET: Final = TEXT_SPECS[b"set"]
_MG: Final = META_SPECS[b"mg"]


class TextSession(TextAdmin):
    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)

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
        route = self.route
        if (
            plain
            and self._rest is None
            and self._crawl is None
            and self.parser.idle
            and allowed(self.capabilities, _GET) == ALLOWED
        ):
            # Plain gets and sets (the most frequent requests, alone or pipelined) are
            # answered straight from the read, up to the first line that is anything else
            # (or, in a cluster, whose key another node owns).
            assert cache is not None  # a session that may read is logged in to a cache
            eol = data.find(b"\r\n")
            key = plain_get_key(data, 0, eol) if head == b"get " else None
            if (
                key is not None
                and eol == len(data) - 2
                and (route is None or route.is_local(cache.id, key))
            ):
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
            if (
                key is not None
                and allowed(self.capabilities, _MG) == ALLOWED
                and (route is None or route.is_local(self._cache_id(), key))
            ):
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
        if self._crawl is not None:
            self._crawl_step(now, out)
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
        if self.forwards is not None:
            # Some replies come from other nodes: the connection completes `out`.
            self.take_forwards(out)
            return self.account(self.cache or cache, data, b"")
        return self.account(self.cache or cache, data, b"".join(out))

    def _run(self, command: object, now: float, out: list[bytes]) -> None:
        """One parsed command: asked for at the gate, then executed or refused."""
        spec = command.spec if isinstance(command, MetaCommand) else text_spec(command)
        verdict = allowed(self.capabilities, spec)
        if verdict == ALLOWED:
            _HANDLERS[type(command)](self, command, now, out)
        else:
            self._refuse(command, verdict, now, out)

    def _plain_requests(self, cache: Cache, data: bytes, now: float, out: list[bytes]) -> int:
        """Answer the leading plain gets and sets (see `plain_get_key`, `plain_set`); the
        rest is left to the parser. Answers how many bytes were handled."""
        pos = 0
        size = len(data)
        may_write = allowed(self.capabilities, _SET) == ALLOWED
        item_size_max = cache.item_size_max
        # Only an anonymous connection has sets that may be logins (see _names_login).
        usernames = self._usernames
        route = self.route
        cache_id = cache.id
        batch = 0
        while pos < size and batch <= REPLY_BATCH_MAX:
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                break
            key = plain_get_key(data, pos, eol)
            if key is not None:
                if route is not None and not route.is_local(cache_id, key):
                    break  # another node's key: the parser's path forwards it
                reply = _get_reply(cache, key, now)
                out.append(reply)
                batch += len(reply)
                pos = eol + 2
                continue
            fields = plain_set(data, pos, eol, item_size_max) if may_write else None
            if fields is None:
                break
            key, flags, exptime, start, end, noreply = fields
            if route is not None and not route.is_local(cache_id, key):
                break
            value = data[start:end]
            # (`32 in value`, not `b" " in value`: bytes' `in` first tries its argument as an
            # int, and a bytes one costs a raised and cleared TypeError, some 400 ns.)
            if usernames is not None and (
                key in usernames or (32 in value and names_user(value, usernames))
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

    # -- commands ------------------------------------------------------------------------

    def _retrieve(self, command: Retrieve, now: float, out: list[bytes]) -> None:
        self._retrieve_keys(command, now, out)

    def _retrieve_keys(self, command: Retrieve, now: float, out: list[bytes]) -> None:
        if self.route is not None:
            self._retrieve_routed(command, now, out)
            return
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
        if self.route is not None:
            checked = None
            if verb is StoreVerb.CAS and self.copies > 1:
                checked = CheckedChange(
                    store_line(command, noreply=False),
                    _stored,
                    store_line(command, as_set=True, noreply=True),
                    noreply,
                )
            unreachable = _unless(noreply, replies.NOT_STORED)
            where = self.route_write(
                PROTOCOL_TEXT, key, store_line(command), out, unreachable, checked
            )
            if where == FORWARDED:
                return
        result, _ = cache.store(
            _MODES[verb],
            key,
            command.value,
            command.flags,
            command.exptime,
            now,
            command.cas_unique,
        )
        if self.copy_after is not None:  # a checked change made here: now to the replicas
            if result is StoreResult.STORED:
                self.send_copies()
            self.copy_after = None
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
        if self.route is not None:
            here = self._change_here(command.key, delete_line(command), command.noreply, out)
            if here is None:
                return
            out = here
        result = cache.delete(command.key, now)
        if not command.noreply:
            out.append(replies.DELETED if result is DeleteResult.DELETED else replies.NOT_FOUND)

    def _arith(self, command: Arith, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        if self.route is not None:
            here = self._change_here(command.key, arith_line(command), command.noreply, out)
            if here is None:
                return
            out = here
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
        if self.route is not None:
            here = self._change_here(command.key, touch_line(command), command.noreply, out)
            if here is None:
                return
            out = here
        item = cache.touch(command.key, command.exptime, now)
        if not command.noreply:
            out.append(replies.NOT_FOUND if item is None else replies.TOUCHED)

    def _flush_all(self, command: FlushAll, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        service = self.service
        # Another node's flush_all (forwarded): it counts and records it, this node empties
        # its share (at the same moment, for a delayed one).
        event = None if self.forwarded else service.flush_event(self, cache.id, "text")
        service.flush(cache.id, event, command.delay, now, counted=not self.forwarded)
        reply = b"" if command.noreply and not self.forwarded else replies.OK
        self._everywhere(b"flush_all %d\r\n" % command.delay, reply, out)

    def _flush_prefix(self, command: FlushPrefix, now: float, out: list[bytes]) -> None:
        # As flush_all: every node's share of the cache, logged by the node that took it.
        cache = self.cache
        assert cache is not None
        service = self.service
        event = None if self.forwarded else service.flush_event(self, cache.id, "text")
        if cache.curr_items <= PREFIX_SCAN_SLICE:  # scanned within the flush
            self._batch += cache.curr_items * _PREFIX_SCAN_KEY_ESTIMATE
            if self._batch > REPLY_BATCH_MAX:
                self.backlog = True
        try:
            service.flush(cache.id, event, prefix=command.prefix, counted=not self.forwarded)
        except TooManyPrefixFlushes:
            if not command.noreply or self.forwarded:
                out.append(replies.PREFIX_FLUSHES_PENDING)
            return
        reply = b"" if command.noreply and not self.forwarded else replies.OK
        self._everywhere(b"flush_prefix %s\r\n" % command.prefix, reply, out)

    def _stats(self, command: Stats, now: float, out: list[bytes]) -> None:
        group = command.args[0] if command.args else b""
        self._batch += _STATS_REPLY_ESTIMATE
        if self._batch > REPLY_BATCH_MAX:
            self.backlog = True
        route = self.route
        if route is not None and (group == b"" or group == b"reset"):
            # The whole cache's: every node of the cluster answers its share.
            self._cluster_stats(group, now, out)
        elif group == b"reset":
            self.stats_lines(group, now)
            out.append(replies.RESET)
        elif group in STATS_GROUPS:  # the caller's cache only (memcloud.admin_commands)
            self._admin_reply(admin_stats(self, command.args, now), now, out)
        else:
            lines = self.stats_lines(group, now)
            out.append(replies.ERROR if lines is None else render_stats(lines))

    def _admin(self, command: Admin, now: float, out: list[bytes]) -> None:
        self._admin_reply(admin_command(self, command, now), now, out)

    def _meta(self, command: MetaCommand, now: float, out: list[bytes]) -> None:
        if self.route is not None and self._meta_forwarded(command, out):
            return
        start = len(out)
        self._batch += execute_meta(self, command, now, out)
        if self.copy_after is not None:  # a change made here: now to the replicas
            if meta_made(b"".join(out[start:])):
                self.send_copies()
            self.copy_after = None
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


def _stored(reply: bytes) -> bool:
    return reply == replies.STORED


def _unless(noreply: bool, reply: bytes) -> bytes:
    return b"" if noreply else reply


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
    FlushPrefix: TextSession._flush_prefix,  # type: ignore[dict-item]
    Stats: TextSession._stats,  # type: ignore[dict-item]
    Admin: TextSession._admin,  # type: ignore[dict-item]
    Version: TextSession._version,  # type: ignore[dict-item]
    Verbosity: TextSession._verbosity,  # type: ignore[dict-item]
    Quit: TextSession._quit,  # type: ignore[dict-item]
    Close: TextSession._close_after,  # type: ignore[dict-item]
    Invalid: TextSession._invalid,  # type: ignore[dict-item]
    MetaCommand: TextSession._meta,  # type: ignore[dict-item]
}
