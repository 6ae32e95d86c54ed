"""A binary-protocol connection: parse what arrived, execute every whole request against
storage, answer all of them in one write (quiet requests answer only what memcached's do).

Every request is asked for at the gate (memcloud.gate, the table in protocol/specs.py) before
it runs. Status choices where memcached has no equivalent (see docs/protocol-compat.md):
* a credential without the write capability gets 0x05 (not stored) for every request that
  would change the cache: set/add/replace/append/prepend, delete, incr/decr, touch, GAT*;
* a credential without the flush capability gets 0x20 for Flush, as memcached answers
  Flush when flush_all is disabled (-F);
* before authentication everything but SASL List Mechs/Auth/Step and Version gets 0x20.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, cast

from memcloud.admin_commands import binary_stats
from memcloud.auth_throttle import address_of
from memcloud.binary_forwarding import BinaryForwarding, miss_reply, touch_miss_reply
from memcloud.gate import ALLOWED, NO_FLUSH, NO_WRITE, allowed
from memcloud.protocol.binary import (
    NEED_DATA,
    NOOP,
    STORE_VERBS,
    Opcode,
    Rejected,
    Request,
    Status,
    error_response,
    response,
    single_request,
    value_response,
)
from memcloud.protocol.binary import request as binary_request
from memcloud.protocol.sasl import MECHANISMS, PLAIN, parse_plain
from memcloud.protocol.specs import BINARY_SPECS, REJECTED, SPECS_BY_OPCODE
from memcloud.routing import FORWARDED, PROTOCOL_BINARY
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.stats.report import MEMCACHED_VERSION
from memcloud.storage.cache import Cache, absolute_exptime
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult

__all__ = ["BinarySession"]

_STORE_EXTRAS: Final = struct.Struct(">II")  # flags, exptime
_ARITH_EXTRAS: Final = struct.Struct(">QQI")  # delta, initial, exptime
_COUNTER: Final = struct.Struct(">Q")
_EXPTIME: Final = struct.Struct(">I")
# incr/decr expiration meaning "do not create a missing counter".
NO_CREATE: Final = 0xFFFFFFFF
_VERSION: Final = MEMCACHED_VERSION.encode()
_AUTHENTICATED: Final = b"Authenticated"
_READ_ONLY: Final = b"Not stored: this credential has no write capability"
_NO_FLUSH: Final = b"Flush refused: this credential has no flush capability"
_UNAUTHENTICATED: Final = b"Authentication required"

# The storage mode of each storage opcode: its verb's, paired by name (see StoreVerb).
_STORE_MODES: Final = {opcode: StoreMode[verb.name] for opcode, verb in STORE_VERBS.items()}
# The row the single-request shortcut asks the gate for.
_GET_SPEC: Final = BINARY_SPECS[Opcode.GET]
# Quiet requests whose success is not answered.
_QUIET: Final = frozenset(
    {
        Opcode.SETQ,
        Opcode.ADDQ,
        Opcode.REPLACEQ,
        Opcode.APPENDQ,
        Opcode.PREPENDQ,
        Opcode.DELETEQ,
        Opcode.INCREMENTQ,
        Opcode.DECREMENTQ,
        Opcode.FLUSHQ,
        Opcode.QUITQ,
    }
)
# Storage's NOT_STORED in memcached's words for each mode (complete_update_bin).
_NOT_STORED_STATUS: Final = {
    StoreMode.ADD: Status.KEY_EEXISTS,
    StoreMode.REPLACE: Status.KEY_ENOENT,
    StoreMode.APPEND: Status.NOT_STORED,
    StoreMode.PREPEND: Status.NOT_STORED,
    StoreMode.SET: Status.NOT_STORED,
    StoreMode.CAS: Status.NOT_STORED,
}
_STORE_ERRORS: Final = {
    StoreResult.EXISTS: Status.KEY_EEXISTS,
    StoreResult.NOT_FOUND: Status.KEY_ENOENT,
    StoreResult.TOO_LARGE: Status.E2BIG,
    StoreResult.NO_MEMORY: Status.ENOMEM,
}
_ARITH_ERRORS: Final = {
    ArithResult.NOT_FOUND: Status.KEY_ENOENT,
    ArithResult.NON_NUMERIC: Status.DELTA_BADVAL,
    ArithResult.EXISTS: Status.KEY_EEXISTS,
}

_Handler = Callable[["BinarySession", Request, float, list[bytes]], None]


class BinarySession(BinaryForwarding):
    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)

    def handle(self, data: bytes) -> bytes:
        """Everything one read brings, answered as one block of bytes (at most about
        REPLY_BATCH_MAX of values; the rest of the input is the backlog)."""
        cache = self.cache
        if self.parser.idle and allowed(self.capabilities, _GET_SPEC) == ALLOWED:
            # A read of exactly one get (the most frequent request), or of the Noop that
            # libmemcached sends after its GetKQ, is answered straight. Every opcode
            # single_request answers needs what Get needs (tests/protocol/test_command_specs).
            single = single_request(data)
            route = self.route
            if single is not None and (
                route is None or single[0] == NOOP or route.is_local(self._cache_id(), single[1])
            ):
                assert cache is not None  # a session that may read is logged in to a cache
                opcode, key, opaque = single
                if opcode == NOOP:
                    reply = response(opcode, opaque)
                else:
                    reply = _retrieval(cache, opcode, key, opaque, self.service.clock.now())
                self._batch = 0
                self.backlog = False
                return self.account(cache, data, reply)
        parser = self.parser
        parser.receive_data(data)
        out: list[bytes] = []
        now = self.service.clock.now()
        self._batch = 0
        self.backlog = False
        while not self.closing:
            if self._batch > REPLY_BATCH_MAX:
                self.backlog = True
                break
            request = parser.next_command()
            if request is NEED_DATA:
                break
            self._run(cast("Request | Rejected", request), now, out)
        if self.forwards is not None:
            # Some replies come from other nodes: the connection completes `out`.
            self.take_forwards(out)
            return self.account(self.cache or cache, data, b"")
        return self.account(self.cache or cache, data, b"".join(out))

    def _run(self, request: Request | Rejected, now: float, out: list[bytes]) -> None:
        """One parsed request: asked for at the gate, then executed or refused."""
        if type(request) is Rejected:
            self._rejected(request, out)
            return
        assert isinstance(request, Request)
        verdict = allowed(self.capabilities, SPECS_BY_OPCODE[request.opcode])
        if verdict == ALLOWED:
            _HANDLERS[request.opcode](self, request, now, out)
        else:
            self._refuse(request, verdict, out)

    def _refuse(self, request: Request, verdict: int, out: list[bytes]) -> None:
        """Answer a request the gate did not allow (see the module's docstring)."""
        opcode, opaque = request.opcode, request.opaque
        if verdict == NO_WRITE:
            if opcode in _STORE_MODES:
                cache = self.cache
                assert cache is not None
                cache.refuse_store()  # counted as a set, as the text protocol counts it
            out.append(error_response(opcode, opaque, Status.NOT_STORED, _READ_ONLY))
        elif verdict == NO_FLUSH:
            out.append(error_response(opcode, opaque, Status.AUTH_ERROR, _NO_FLUSH))
        elif self.full:  # not logged in: an anonymous cache at its connection limit
            out.append(error_response(opcode, opaque, Status.ETMPFAIL))
            self.closing = True
        else:  # not logged in (or, deny by default, an opcode without a row)
            out.append(error_response(opcode, opaque, Status.AUTH_ERROR, _UNAUTHENTICATED))

    def _rejected(self, rejected: Rejected, out: list[bytes]) -> None:
        if rejected.close:
            self.closing = True
            if rejected.status is not None:
                out.append(error_response(rejected.opcode, rejected.opaque, rejected.status))
            return
        # Before authentication a refused frame says only that (memcached's rule with SASL).
        logged_in = allowed(self.capabilities, REJECTED) == ALLOWED
        status = rejected.status if logged_in else Status.AUTH_ERROR
        assert status is not None
        cache = self.cache
        if status is Status.E2BIG and cache is not None:
            # A too-large set is counted as one; it drops the old value if it may write.
            spec = SPECS_BY_OPCODE[rejected.opcode]
            drops_old = (
                rejected.opcode in (Opcode.SET, Opcode.SETQ)
                and allowed(self.capabilities, spec) == ALLOWED
            )
            cache.refuse_too_large(rejected.key if drops_old else None)
        out.append(error_response(rejected.opcode, rejected.opaque, status))

    # -- authentication ------------------------------------------------------------------

    def _sasl_list(self, request: Request, now: float, out: list[bytes]) -> None:
        out.append(response(request.opcode, request.opaque, value=MECHANISMS))

    def _sasl_auth(self, request: Request, now: float, out: list[bytes]) -> None:
        throttle = self.service.auth_throttle
        address = address_of(self.peer)
        credentials = parse_plain(request.value) if request.key == PLAIN else None
        name = credentials.username.decode("utf-8", "replace") if credentials else ""
        admission = throttle.admit(address, now, name)
        if admission.delay > self.reply_delay:
            self.reply_delay = admission.delay
        if not admission.check or credentials is None:
            ok = self.full = False
            self._logout()
        else:
            self._logout()
            ok = self.try_login(credentials.username, credentials.password)
        if ok:
            out.append(response(request.opcode, request.opaque, value=_AUTHENTICATED))
            return
        if self.full:  # right credential, but its cache is at its connection limit
            out.append(error_response(request.opcode, request.opaque, Status.ETMPFAIL))
            self.closing = True
            return
        if admission.check:
            throttle.failed(address, now, name)
        out.append(error_response(request.opcode, request.opaque, Status.AUTH_ERROR))

    def _sasl_step(self, request: Request, now: float, out: list[bytes]) -> None:
        # PLAIN completes in one Auth request: there is never a step to take.
        self._logout()
        out.append(error_response(request.opcode, request.opaque, Status.AUTH_ERROR))

    def _logout(self) -> None:
        """Drop the current identity before a new authentication (memcached allows re-auth;
        a failed one leaves the connection unauthenticated)."""
        if self.cache is not None:
            self.cache.stats.disconnected()
            if self.logged_out is not None:
                self.logged_out()
        self.cache = None
        self.principal = None

    # -- reads ---------------------------------------------------------------------------

    def _get(self, request: Request, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        if self.route is not None and self._forwarded_elsewhere(
            request, out, miss_reply(request.opcode, request.key, request.opaque)
        ):
            return
        reply = _retrieval(cache, request.opcode, request.key, request.opaque, now)
        if reply:
            self._batch += len(reply)
            out.append(reply)

    def _touch(self, request: Request, now: float, out: list[bytes]) -> None:
        """Touch, GAT, GATQ, GATK, GATKQ."""
        cache = self.cache
        assert cache is not None
        opcode = request.opcode
        if self.route is not None:
            where = self._route_change(
                request, out, touch_miss_reply(opcode, request.key, request.opaque)
            )
            if where == FORWARDED:
                return
        (exptime,) = _EXPTIME.unpack(request.extras)
        is_get = opcode != Opcode.TOUCH
        touch = cache.gat if is_get else cache.touch
        item = touch(request.key, _signed32(exptime), now)
        if item is None:
            if opcode == Opcode.GATK:
                out.append(response(opcode, request.opaque, Status.KEY_ENOENT, key=request.key))
            elif opcode == Opcode.TOUCH or opcode == Opcode.GAT:
                out.append(error_response(opcode, request.opaque, Status.KEY_ENOENT))
            return
        with_key = opcode == Opcode.GATK or opcode == Opcode.GATKQ
        value = item.value if is_get else b""
        self._batch += len(value)
        key = request.key if with_key else b""
        out.append(value_response(opcode, request.opaque, item.cas, item.flags, key, value))

    # -- writes --------------------------------------------------------------------------

    def _store(self, request: Request, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        opcode = request.opcode
        if self.route is not None:
            where = self._route_change(
                request, out, error_response(opcode, request.opaque, Status.NOT_STORED)
            )
            if where == FORWARDED:
                return
        mode = _STORE_MODES[opcode]
        if request.extras:
            flags, exptime = _STORE_EXTRAS.unpack(request.extras)
        else:  # append / prepend keep the item's flags and expiry
            flags = exptime = 0
        if request.cas and (mode is StoreMode.SET or mode is StoreMode.ADD):
            mode = StoreMode.CAS  # memcached: any set/add/replace with a CAS is a CAS
        result, cas = cache.store(
            mode, request.key, request.value, flags, _signed32(exptime), now, request.cas
        )
        if self.copy_after is not None:  # a checked change made here: now to the replicas
            if result is StoreResult.STORED:
                self.send_copies()
            self.copy_after = None
        if result is StoreResult.STORED:
            if opcode not in _QUIET:
                out.append(response(opcode, request.opaque, cas=cas))
            return
        if result is StoreResult.NOT_STORED:
            status = _NOT_STORED_STATUS[mode]
        else:
            status = _STORE_ERRORS[result]
        out.append(error_response(opcode, request.opaque, status))

    def _delete(self, request: Request, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        if self.route is not None:
            where = self._route_change(
                request, out, error_response(request.opcode, request.opaque, Status.KEY_ENOENT)
            )
            if where == FORWARDED:
                return
        result = cache.delete(request.key, now, request.cas)
        if self.copy_after is not None:  # a checked change made here: now to the replicas
            if result is DeleteResult.DELETED:
                self.send_copies()
            self.copy_after = None
        if result is DeleteResult.DELETED:
            if request.opcode != Opcode.DELETEQ:
                out.append(response(request.opcode, request.opaque))
            return
        status = Status.KEY_EEXISTS if result is DeleteResult.EXISTS else Status.KEY_ENOENT
        out.append(error_response(request.opcode, request.opaque, status))

    def _arith(self, request: Request, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        opcode = request.opcode
        if self.route is not None:
            where = self._route_change(
                request, out, error_response(opcode, request.opaque, Status.KEY_ENOENT)
            )
            if where == FORWARDED:
                return
        delta, initial, exptime = _ARITH_EXTRAS.unpack(request.extras)
        incr = opcode == Opcode.INCREMENT or opcode == Opcode.INCREMENTQ
        key = request.key
        result = cache.arith(key, delta, incr, now, request.cas)
        if isinstance(result, int):
            item = cache.peek(key, now)
            if item is None:  # the new value did not fit (out of memory)
                out.append(error_response(opcode, request.opaque, Status.ENOMEM))
                return
            value, cas = result, item.cas
        elif result is ArithResult.NOT_FOUND and exptime != NO_CREATE:
            cas = cache.create_counter(key, initial, _signed32(exptime), now)
            if not cas:
                out.append(error_response(opcode, request.opaque, Status.ENOMEM))
                return
            value = initial
        else:
            out.append(error_response(opcode, request.opaque, _ARITH_ERRORS[result]))
            return
        if opcode not in _QUIET:
            out.append(response(opcode, request.opaque, cas=cas, value=_COUNTER.pack(value)))

    def _flush(self, request: Request, now: float, out: list[bytes]) -> None:
        cache = self.cache
        assert cache is not None
        service = self.service
        delay = 0
        if request.extras:
            (exptime,) = _EXPTIME.unpack(request.extras)
            if exptime:
                seconds = absolute_exptime(_signed32(exptime), now) - now
                delay = max(1, round(seconds)) if seconds > 0 else 0
        if self.forwarded:
            # Another node took this Flush: it counts and records it, this node empties
            # its share (at the same moment, for a delayed one).
            service.flush(cache.id, None, delay, now, counted=False)
            out.append(response(request.opcode, request.opaque))
            return
        service.flush(cache.id, service.flush_event(self, cache.id, "binary"), delay, now)
        reply = b"" if request.opcode == Opcode.FLUSHQ else response(request.opcode, request.opaque)
        if self.route is not None:
            # Every other node of the cluster empties its share before the client hears.
            packet = binary_request(Opcode.FLUSH, extras=_EXPTIME.pack(delay))
            self.forwards_to_all(PROTOCOL_BINARY, packet, out, lambda parts: reply)
        elif reply:
            out.append(reply)

    # -- the rest ------------------------------------------------------------------------

    def _noop(self, request: Request, now: float, out: list[bytes]) -> None:
        out.append(response(request.opcode, request.opaque))

    def _version(self, request: Request, now: float, out: list[bytes]) -> None:
        out.append(response(request.opcode, request.opaque, value=_VERSION))

    def _quit(self, request: Request, now: float, out: list[bytes]) -> None:
        if request.opcode == Opcode.QUIT:
            out.append(response(request.opcode, request.opaque))
        self.closing = True

    def _stat(self, request: Request, now: float, out: list[bytes]) -> None:
        group = request.key
        opcode, opaque = request.opcode, request.opaque
        if self.route is not None and (group == b"" or group == b"reset"):
            self._cluster_stat(group, opcode, opaque, now, out)
            return
        admin = binary_stats(self, group)  # `detail`, `sizes` (memcloud.admin_commands)
        if admin is not None:
            if isinstance(admin, int):
                self._refuse(request, admin, out)
                return
            for stat_key, stat_value in admin:
                out.append(response(opcode, opaque, key=stat_key, value=stat_value))
            out.append(response(opcode, opaque))
            return
        lines = self.stats_lines(group, now)
        if lines is None:
            out.append(error_response(opcode, opaque, Status.KEY_ENOENT))
            return
        self._batch += 64 * len(lines) + 64
        for name, value in lines:
            out.append(response(opcode, opaque, key=name.encode(), value=str(value).encode()))
        out.append(response(opcode, opaque))


def _signed32(exptime: int) -> int:
    """Binary exptimes are unsigned 32-bit; memcached reads them as a signed time_t."""
    return exptime - (1 << 32) if exptime >= 1 << 31 else exptime


# Plain ints for the per-request comparisons (an enum member is an attribute lookup).
_GET: Final = int(Opcode.GET)
_GETK: Final = int(Opcode.GETK)
_GETKQ: Final = int(Opcode.GETKQ)


def _retrieval(cache: Cache, opcode: int, key: bytes, opaque: int, now: float) -> bytes:
    """The reply to Get, GetQ, GetK or GetKQ (empty for a quiet one's miss)."""
    item = cache.get(key, now)
    if item is None:
        if opcode == _GET:
            return error_response(opcode, opaque, Status.KEY_ENOENT)
        if opcode == _GETK:
            return response(opcode, opaque, Status.KEY_ENOENT, key=key)
        return b""
    with_key = opcode in (_GETK, _GETKQ)
    return value_response(
        opcode, opaque, item.cas, item.flags, key if with_key else b"", item.value
    )


_HANDLERS: dict[int, _Handler] = {
    Opcode.GET: BinarySession._get,
    Opcode.GETQ: BinarySession._get,
    Opcode.GETK: BinarySession._get,
    Opcode.GETKQ: BinarySession._get,
    Opcode.TOUCH: BinarySession._touch,
    Opcode.GAT: BinarySession._touch,
    Opcode.GATQ: BinarySession._touch,
    Opcode.GATK: BinarySession._touch,
    Opcode.GATKQ: BinarySession._touch,
    Opcode.DELETE: BinarySession._delete,
    Opcode.DELETEQ: BinarySession._delete,
    Opcode.INCREMENT: BinarySession._arith,
    Opcode.INCREMENTQ: BinarySession._arith,
    Opcode.DECREMENT: BinarySession._arith,
    Opcode.DECREMENTQ: BinarySession._arith,
    Opcode.FLUSH: BinarySession._flush,
    Opcode.FLUSHQ: BinarySession._flush,
    Opcode.NOOP: BinarySession._noop,
    Opcode.VERSION: BinarySession._version,
    Opcode.QUIT: BinarySession._quit,
    Opcode.QUITQ: BinarySession._quit,
    Opcode.STAT: BinarySession._stat,
    Opcode.SASL_LIST_MECHS: BinarySession._sasl_list,
    Opcode.SASL_AUTH: BinarySession._sasl_auth,
    Opcode.SASL_STEP: BinarySession._sasl_step,
    **{opcode: BinarySession._store for opcode in _STORE_MODES},
}
