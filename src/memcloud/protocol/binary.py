"""memcached's binary protocol, sans-IO: `receive_data(bytes)`, then `next_command()` until it
answers NEED_DATA. Requests come out as `Request`; a frame that cannot be executed comes out
as `Rejected`, carrying the status memcached answers and whether the connection must close.

Framing follows memcached's `proto_bin.c`: a 24-byte header, then extras, key and value. The
parser validates every header before it waits for the body, so a client can never make it
hold more than one request of at most the item size limit; a value over the limit is skipped
as it streams in, never buffered.
"""

from __future__ import annotations

import struct
from collections import deque
from enum import IntEnum
from typing import Final

from memcloud.protocol.commands import Record, StoreVerb
from memcloud.protocol.limits import KEY_MAX_LENGTH

__all__ = [
    "ERROR_MESSAGES",
    "HEADER",
    "HEADER_SIZE",
    "NEED_DATA",
    "NOOP",
    "REQUEST_MAGIC",
    "RESPONSE_MAGIC",
    "SASL_DATA_MAX",
    "SASL_MECH_MAX",
    "STORE_VERBS",
    "BinaryParser",
    "Opcode",
    "Rejected",
    "Request",
    "Status",
    "error_response",
    "request",
    "response",
    "single_request",
    "stat_packets",
    "value_response",
]

REQUEST_MAGIC: Final = 0x80
RESPONSE_MAGIC: Final = 0x81
# magic, opcode, key length, extras length, data type, vbucket/status, body length, opaque, cas
HEADER: Final = struct.Struct(">BBHBBHIIQ")
HEADER_SIZE: Final = 24
# memcached's MAX_SASL_MECH_LEN.
SASL_MECH_MAX: Final = 32
# A SASL PLAIN message is an authzid, a username and a password: never more than this.
SASL_DATA_MAX: Final = 1024


class Opcode(IntEnum):
    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCREMENT = 0x05
    DECREMENT = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0A
    VERSION = 0x0B
    GETK = 0x0C
    GETKQ = 0x0D
    APPEND = 0x0E
    PREPEND = 0x0F
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCREMENTQ = 0x15
    DECREMENTQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1A
    TOUCH = 0x1C
    GAT = 0x1D
    GATQ = 0x1E
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GATK = 0x23
    GATKQ = 0x24


class Status(IntEnum):
    SUCCESS = 0x00
    KEY_ENOENT = 0x01
    KEY_EEXISTS = 0x02
    E2BIG = 0x03
    EINVAL = 0x04
    NOT_STORED = 0x05
    DELTA_BADVAL = 0x06
    AUTH_ERROR = 0x20
    AUTH_CONTINUE = 0x21
    UNKNOWN_COMMAND = 0x81
    ENOMEM = 0x82
    ETMPFAIL = 0x86  # "temporary failure": here, a cache at its connection limit


# What each storage opcode asks to store, in the words the text protocol's commands use; a
# quiet opcode asks the same as its loud one and is answered only when it fails. (A CAS
# unique in the header makes a set or an add a CAS: the session decides that per request.)
STORE_VERBS: Final[dict[int, StoreVerb]] = {
    Opcode.SET: StoreVerb.SET,
    Opcode.SETQ: StoreVerb.SET,
    Opcode.ADD: StoreVerb.ADD,
    Opcode.ADDQ: StoreVerb.ADD,
    Opcode.REPLACE: StoreVerb.REPLACE,
    Opcode.REPLACEQ: StoreVerb.REPLACE,
    Opcode.APPEND: StoreVerb.APPEND,
    Opcode.APPENDQ: StoreVerb.APPEND,
    Opcode.PREPEND: StoreVerb.PREPEND,
    Opcode.PREPENDQ: StoreVerb.PREPEND,
}

# The bodies memcached's write_bin_error() sends with each status.
ERROR_MESSAGES: Final[dict[int, bytes]] = {
    Status.KEY_ENOENT: b"Not found",
    Status.KEY_EEXISTS: b"Data exists for key.",
    Status.E2BIG: b"Too large.",
    Status.EINVAL: b"Invalid arguments",
    Status.NOT_STORED: b"Not stored.",
    Status.DELTA_BADVAL: b"Non-numeric server-side value for incr or decr",
    Status.AUTH_ERROR: b"Auth failure.",
    Status.UNKNOWN_COMMAND: b"Unknown command",
    Status.ENOMEM: b"Out of memory",
    Status.ETMPFAIL: b"Too many open connections",
}


class Request(Record):
    """One whole request. `opcode` is an int (an `Opcode` value); the session decodes extras."""

    __slots__ = ("cas", "extras", "key", "opaque", "opcode", "value")

    def __init__(
        self, opcode: int, key: bytes, extras: bytes, value: bytes, opaque: int, cas: int
    ) -> None:
        self.opcode: Final = opcode
        self.key: Final = key
        self.extras: Final = extras
        self.value: Final = value
        self.opaque: Final = opaque
        self.cas: Final = cas

    def _values(self) -> tuple[object, ...]:
        return (self.opcode, self.key, self.extras, self.value, self.opaque, self.cas)


class Rejected(Record):
    """A frame the parser refused. `status` None means: close without a reply (bad magic).
    `key` is set for a value refused as too large (memcached drops the old item of a set)."""

    __slots__ = ("close", "key", "opaque", "opcode", "status")

    def __init__(
        self, opcode: int, opaque: int, status: Status | None, close: bool, key: bytes = b""
    ) -> None:
        self.opcode: Final = opcode
        self.opaque: Final = opaque
        self.status: Final = status
        self.close: Final = close
        self.key: Final = key

    def _values(self) -> tuple[object, ...]:
        return (self.opcode, self.opaque, self.status, self.close, self.key)


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

# The shape memcached's dispatch_bin_command() accepts for each opcode: allowed extras
# lengths, whether a key is required (True), forbidden (False) or optional (None), and what
# may follow the key: nothing, a stored value, or a bounded SASL message.
_NO_VALUE, _STORED_VALUE, _SASL_VALUE = 0, 1, 2
_Shape = tuple[frozenset[int], bool | None, int]
_NONE: Final = frozenset({0})
_SHAPES: Final[dict[int, _Shape]] = {}
for _op in (Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ, Opcode.DELETE, Opcode.DELETEQ):
    _SHAPES[_op] = (_NONE, True, _NO_VALUE)
for _op in (Opcode.SET, Opcode.SETQ, Opcode.ADD, Opcode.ADDQ, Opcode.REPLACE, Opcode.REPLACEQ):
    _SHAPES[_op] = (frozenset({8}), True, _STORED_VALUE)
for _op in (Opcode.APPEND, Opcode.APPENDQ, Opcode.PREPEND, Opcode.PREPENDQ):
    _SHAPES[_op] = (_NONE, True, _STORED_VALUE)
for _op in (Opcode.INCREMENT, Opcode.INCREMENTQ, Opcode.DECREMENT, Opcode.DECREMENTQ):
    _SHAPES[_op] = (frozenset({20}), True, _NO_VALUE)
for _op in (Opcode.QUIT, Opcode.QUITQ, Opcode.NOOP, Opcode.VERSION, Opcode.SASL_LIST_MECHS):
    _SHAPES[_op] = (_NONE, False, _NO_VALUE)
for _op in (Opcode.FLUSH, Opcode.FLUSHQ):
    _SHAPES[_op] = (frozenset({0, 4}), False, _NO_VALUE)
for _op in (Opcode.TOUCH, Opcode.GAT, Opcode.GATQ, Opcode.GATK, Opcode.GATKQ):
    _SHAPES[_op] = (frozenset({4}), True, _NO_VALUE)
_SHAPES[Opcode.STAT] = (_NONE, None, _NO_VALUE)
_SHAPES[Opcode.SASL_AUTH] = (_NONE, True, _SASL_VALUE)
_SHAPES[Opcode.SASL_STEP] = (_NONE, True, _SASL_VALUE)
del _op


class BinaryParser:
    """Turns a byte stream into requests. Holds at most one request (bounded by the item
    size limit) plus what arrived after it in the same reads."""

    __slots__ = ("_buf", "_dead", "_pending", "_pending_size", "_pos", "_skip", "item_size_max")

    def __init__(self, item_size_max: int) -> None:
        self.item_size_max = item_size_max
        self._buf = b""
        self._pos = 0
        self._pending: deque[bytes] = deque()  # chunks that arrived after _buf
        self._pending_size = 0
        self._skip = 0  # bytes of a refused body still to discard as they arrive
        self._dead = False  # a fatal frame was seen: the connection is closing

    @property
    def idle(self) -> bool:
        """Nothing held: the next read starts a new request."""
        return (
            self._pos >= len(self._buf) and not self._pending and not self._skip and not self._dead
        )

    def receive_data(self, data: bytes) -> None:
        if self._dead:
            return
        if self._skip:
            taken = min(self._skip, len(data))
            self._skip -= taken
            data = data[taken:]
            if not data:
                return
        if self._pos >= len(self._buf) and not self._pending:
            self._buf = data
            self._pos = 0
        else:
            self._pending.append(data)
            self._pending_size += len(data)

    def _fill(self, size: int) -> bool:
        """Make `size` unread bytes contiguous in _buf; False if they have not all arrived."""
        unread = len(self._buf) - self._pos
        if unread >= size:
            return True
        if unread + self._pending_size < size:
            return False
        self._buf = self._buf[self._pos :] + b"".join(self._pending)
        self._pos = 0
        self._pending.clear()
        self._pending_size = 0
        return True

    def _discard(self, size: int) -> None:
        """Drop `size` bytes: what is here now, and the rest as it arrives."""
        here = min(size, len(self._buf) - self._pos)
        self._pos += here
        size -= here
        pending = self._pending
        while size and pending:
            chunk = pending.popleft()
            self._pending_size -= len(chunk)
            if len(chunk) > size:
                rest = chunk[size:]
                pending.appendleft(rest)
                self._pending_size += len(rest)
                size = 0
            else:
                size -= len(chunk)
        self._skip = size

    def _fatal(self, opcode: int, opaque: int, status: Status | None) -> Rejected:
        self._dead = True
        self._buf = b""
        self._pos = 0
        self._pending.clear()
        self._pending_size = 0
        return Rejected(opcode, opaque, status, True)

    def next_command(self) -> Request | Rejected | _NeedData:
        if self._dead or not self._fill(HEADER_SIZE):
            return NEED_DATA
        buf = self._buf
        pos = self._pos
        magic, opcode, keylen, extlen, _, _, bodylen, opaque, cas = HEADER.unpack_from(buf, pos)
        if magic != REQUEST_MAGIC:
            return self._fatal(opcode, opaque, None)
        if keylen + extlen > bodylen:
            # memcached answers "unknown command" to a header whose lengths do not add up.
            return self._fatal(opcode, opaque, Status.UNKNOWN_COMMAND)
        if keylen > KEY_MAX_LENGTH:
            return self._fatal(opcode, opaque, Status.EINVAL)
        shape = _SHAPES.get(opcode)
        if shape is None:
            self._pos = pos + HEADER_SIZE
            self._discard(bodylen)
            return Rejected(opcode, opaque, Status.UNKNOWN_COMMAND, False)
        extras_allowed, key_rule, value_kind = shape
        value_length = bodylen - keylen - extlen
        if (
            extlen not in extras_allowed
            or (key_rule is True and keylen == 0)
            or (key_rule is False and keylen != 0)
            or (value_kind == _NO_VALUE and value_length != 0)
            or (value_kind == _SASL_VALUE and (value_length > SASL_DATA_MAX))
        ):
            return self._fatal(opcode, opaque, Status.EINVAL)
        if value_kind == _STORED_VALUE and keylen + value_length > self.item_size_max:
            # memcached's conn_swallow: answer E2BIG and skip the value as it streams in.
            head = HEADER_SIZE + extlen + keylen
            if not self._fill(head):
                return NEED_DATA
            key = self._buf[self._pos + HEADER_SIZE + extlen : self._pos + head]
            self._pos += head
            self._discard(value_length)
            return Rejected(opcode, opaque, Status.E2BIG, False, key)
        end = HEADER_SIZE + bodylen
        if not self._fill(end):
            return NEED_DATA
        buf = self._buf
        pos = self._pos
        start = pos + HEADER_SIZE
        key_start = start + extlen
        value_start = key_start + keylen
        self._pos = pos + end
        return Request(
            opcode,
            buf[key_start:value_start],
            buf[start:key_start] if extlen else b"",
            buf[value_start : pos + end] if value_length else b"",
            opaque,
            cas,
        )


def response(
    opcode: int,
    opaque: int,
    status: int = Status.SUCCESS,
    *,
    cas: int = 0,
    extras: bytes = b"",
    key: bytes = b"",
    value: bytes = b"",
) -> bytes:
    """One response packet."""
    header = HEADER.pack(
        RESPONSE_MAGIC,
        opcode,
        len(key),
        len(extras),
        0,
        status,
        len(extras) + len(key) + len(value),
        opaque,
        cas,
    )
    if extras or key or value:
        return b"".join((header, extras, key, value))
    return header


# A value's response header and its 4 bytes of flags (the extras), packed at once.
_VALUE_HEADER: Final = struct.Struct(">BBHBBHIIQI")
# What a read may hold alone and be answered without the parser: the gets, and the Noop
# that libmemcached sends in a read of its own after each GetKQ.
_SINGLE_OPCODES: Final = frozenset(
    int(opcode) for opcode in (Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ, Opcode.NOOP)
)
NOOP: Final = int(Opcode.NOOP)  # a plain int: compared on the hot path


def value_response(
    opcode: int, opaque: int, cas: int, flags: int, key: bytes, value: bytes
) -> bytes:
    """A successful Get/GAT family response: flags as extras, the key if asked, the value."""
    header = _VALUE_HEADER.pack(
        RESPONSE_MAGIC, opcode, len(key), 4, 0, 0, 4 + len(key) + len(value), opaque, cas, flags
    )
    return header + key + value


def single_request(data: bytes) -> tuple[int, bytes, int] | None:
    """(opcode, key, opaque) when `data` is exactly one well-formed Get, GetQ, GetK or GetKQ
    (with a key) or Noop (without), else None (the parser then reads it, with every check)."""
    if len(data) < HEADER_SIZE or data[0] != REQUEST_MAGIC or data[1] not in _SINGLE_OPCODES:
        return None
    _, opcode, keylen, extlen, _, _, bodylen, opaque, _ = HEADER.unpack_from(data)
    if extlen or bodylen != keylen or keylen > KEY_MAX_LENGTH:
        return None
    if HEADER_SIZE + bodylen != len(data) or (opcode == NOOP) != (keylen == 0):
        return None
    return opcode, data[HEADER_SIZE:], opaque


def error_response(opcode: int, opaque: int, status: int, message: bytes | None = None) -> bytes:
    """An error packet with memcached's message for the status (no key, extras or CAS)."""
    body = ERROR_MESSAGES.get(status, b"") if message is None else message
    return response(opcode, opaque, status, value=body)


def request(
    opcode: int,
    *,
    key: bytes = b"",
    extras: bytes = b"",
    value: bytes = b"",
    opaque: int = 0,
    cas: int = 0,
) -> bytes:
    """One request packet: for tests, benchmarks and tools."""
    header = HEADER.pack(
        REQUEST_MAGIC,
        opcode,
        len(key),
        len(extras),
        0,
        0,
        len(extras) + len(key) + len(value),
        opaque,
        cas,
    )
    return b"".join((header, extras, key, value))


def stat_packets(data: bytes) -> dict[bytes, bytes]:
    """A Stat reply's packets (as one node answers them) as name -> value."""
    numbers: dict[bytes, bytes] = {}
    at = 0
    while at + HEADER_SIZE <= len(data):
        _, _, key_length, extras_length, _, _, body_length, _, _ = HEADER.unpack_from(data, at)
        body = at + HEADER_SIZE
        end = body + body_length
        if end > len(data) or key_length + extras_length > body_length:
            break
        key_start = body + extras_length
        key = data[key_start : key_start + key_length]
        if key:
            numbers[key] = data[key_start + key_length : end]
        at = end
    return numbers
