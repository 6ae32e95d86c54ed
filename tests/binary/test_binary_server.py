"""The binary protocol over real sockets: authentication gate, quiet semantics, opaque,
CAS, counters, stats, capabilities, framing errors and the failed-login backoff."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.conftest import Deployment, start_deployment
from memcloud.protocol.binary import HEADER, Opcode, Status, request
from memcloud.testing import ServerProcess

from .wire import BinaryConnection

SET_EXTRAS = struct.pack(">II", 0xCAFE, 0)


def arith_extras(delta: int, initial: int, exptime: int) -> bytes:
    return struct.pack(">QQI", delta, initial, exptime)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start_deployment(tmp_path_factory.mktemp("binary") / "data")
    yield deployment
    deployment.server.stop()


@pytest.fixture
def server(deployment: Deployment) -> ServerProcess:
    """One server for the module (tests use their own keys or flush first)."""
    return deployment.server


@pytest.fixture
def conn(server: ServerProcess) -> Iterator[BinaryConnection]:
    connection = BinaryConnection(server.port)
    assert connection.login(server.username, server.password).status == Status.SUCCESS
    connection.call(Opcode.FLUSH)
    yield connection
    connection.close()


def test_before_authentication_only_sasl_and_version_answer(server: ServerProcess) -> None:
    writer = BinaryConnection(server.port)
    assert writer.login(server.username, server.password).status == Status.SUCCESS
    writer.call(Opcode.FLUSH)
    assert writer.call(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"v").status == 0

    anonymous = BinaryConnection(server.port)
    version = anonymous.call(Opcode.VERSION, opaque=5)
    assert (version.status, version.opaque, version.value) == (0, 5, b"1.6.21")
    mechs = anonymous.call(Opcode.SASL_LIST_MECHS)
    assert (mechs.status, mechs.value) == (0, b"PLAIN")
    for opcode, fields in (
        (Opcode.GET, {"key": b"k"}),
        (Opcode.SET, {"key": b"k", "extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.SETQ, {"key": b"k", "extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.DELETE, {"key": b"k"}),
        (Opcode.FLUSH, {}),
        (Opcode.NOOP, {}),
        (Opcode.STAT, {}),
    ):
        anonymous.send(request(opcode, opaque=77, **fields))  # type: ignore[arg-type]
        (reply,) = anonymous.read()
        assert (reply.opcode, reply.status, reply.opaque) == (opcode, Status.AUTH_ERROR, 77)
    # nothing was touched, and the connection is still usable for authenticating
    assert writer.call(Opcode.GET, key=b"k").value == b"v"
    assert anonymous.login(server.username, server.password).status == Status.SUCCESS
    assert anonymous.call(Opcode.GET, key=b"k").value == b"v"


def test_sasl_forms_and_failures(server: ServerProcess) -> None:
    c = BinaryConnection(server.port)
    user, password = server.username.encode(), server.password.encode()
    assert c.call(Opcode.SASL_AUTH, key=b"CRAM-MD5", value=b"x").status == Status.AUTH_ERROR
    bad = c.call(Opcode.SASL_AUTH, key=b"PLAIN", value=b"\x00" + user + b"\x00nope")
    assert (bad.status, bad.value) == (Status.AUTH_ERROR, b"Auth failure.")
    assert c.call(Opcode.SASL_STEP, key=b"PLAIN", value=b"x").status == Status.AUTH_ERROR
    libmemcached_form = user + b"\x00" + user + b"\x00" + password
    ok = c.call(Opcode.SASL_AUTH, key=b"PLAIN", value=libmemcached_form, opaque=9)
    assert (ok.status, ok.value, ok.opaque) == (0, b"Authenticated", 9)
    assert c.call(Opcode.NOOP).status == 0
    # a failed re-authentication leaves the connection unauthenticated
    assert c.call(Opcode.SASL_AUTH, key=b"PLAIN", value=b"\x00" + user + b"\x00x").status == 0x20
    assert c.call(Opcode.NOOP).status == Status.AUTH_ERROR


def test_quiet_requests_answer_what_memcached_answers(conn: BinaryConnection) -> None:
    conn.send(
        request(Opcode.SETQ, key=b"a", extras=SET_EXTRAS, value=b"1", opaque=1)  # silent
        + request(Opcode.GETQ, key=b"missing", opaque=2)  # silent miss
        + request(Opcode.GETKQ, key=b"a", opaque=3)  # hit: answered, with key
        + request(Opcode.ADDQ, key=b"a", extras=SET_EXTRAS, value=b"2", opaque=4)  # error
        + request(Opcode.DELETEQ, key=b"missing", opaque=5)  # error
        + request(Opcode.INCREMENTQ, key=b"c", extras=arith_extras(1, 10, 0), opaque=6)
        + request(Opcode.APPENDQ, key=b"a", value=b"+", opaque=7)  # silent
        + request(Opcode.GATQ, key=b"missing", extras=b"\x00" * 4, opaque=8)  # silent miss
        + request(Opcode.GATKQ, key=b"a", extras=b"\x00" * 4, opaque=9)  # hit
        + request(Opcode.NOOP, opaque=10)
    )
    replies = conn.read(5)
    assert [(r.opcode, r.status, r.opaque) for r in replies] == [
        (Opcode.GETKQ, 0, 3),
        (Opcode.ADDQ, Status.KEY_EEXISTS, 4),
        (Opcode.DELETEQ, Status.KEY_ENOENT, 5),
        (Opcode.GATKQ, 0, 9),
        (Opcode.NOOP, 0, 10),
    ]
    conn.assert_nothing_more()
    assert conn.call(Opcode.NOOP, opaque=11).opaque == 11  # nothing else was queued
    assert (replies[0].key, replies[0].value, replies[0].extras) == (b"a", b"1", SET_EXTRAS[:4])
    assert replies[3].value == b"1+"
    assert conn.call(Opcode.GET, key=b"c").value == b"10"


def test_get_variants_and_misses(conn: BinaryConnection) -> None:
    miss = conn.call(Opcode.GET, key=b"nope")
    assert (miss.status, miss.key, miss.value) == (Status.KEY_ENOENT, b"", b"Not found")
    missk = conn.call(Opcode.GETK, key=b"nope")
    assert (missk.status, missk.key) == (Status.KEY_ENOENT, b"nope")
    stored = conn.call(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"v")
    hit = conn.call(Opcode.GET, key=b"k")
    assert (hit.extras, hit.key, hit.value, hit.cas) == (SET_EXTRAS[:4], b"", b"v", stored.cas)
    touched = conn.call(Opcode.TOUCH, key=b"k", extras=struct.pack(">I", 100))
    assert (touched.status, touched.extras, touched.value) == (0, SET_EXTRAS[:4], b"")
    gatk = conn.call(Opcode.GATK, key=b"k", extras=struct.pack(">I", 100))
    assert (gatk.key, gatk.value) == (b"k", b"v")
    expired = conn.call(Opcode.GAT, key=b"k", extras=struct.pack(">I", 0xFFFFFFFF))  # -1
    assert expired.value == b"v"
    assert conn.call(Opcode.GET, key=b"k").status == Status.KEY_ENOENT


def test_cas_on_every_storage_opcode(conn: BinaryConnection) -> None:
    first = conn.call(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"a")
    assert first.status == 0 and first.cas
    stale = first.cas + 1000
    for opcode, fields in (
        (Opcode.SET, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.REPLACE, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.APPEND, {"value": b"x"}),
        (Opcode.PREPEND, {"value": b"x"}),
        (Opcode.DELETE, {}),
        (Opcode.INCREMENT, {"extras": arith_extras(1, 0, 0)}),
    ):
        reply = conn.call(opcode, key=b"k", cas=stale, **fields)  # type: ignore[arg-type]
        assert reply.status == Status.KEY_EEXISTS, opcode
    assert conn.call(Opcode.APPEND, key=b"k", value=b"b", cas=first.cas).status == 0
    assert conn.call(Opcode.GET, key=b"k").value == b"ab"
    assert conn.call(Opcode.SET, key=b"gone", extras=SET_EXTRAS, value=b"x", cas=5).status == 1
    assert conn.call(Opcode.REPLACE, key=b"gone", extras=SET_EXTRAS, value=b"x").status == 1
    assert conn.call(Opcode.APPEND, key=b"gone", value=b"x").status == Status.NOT_STORED


def test_counters_with_initial_value_and_no_create(conn: BinaryConnection) -> None:
    no_create = conn.call(Opcode.INCREMENT, key=b"n", extras=arith_extras(1, 5, 0xFFFFFFFF))
    assert no_create.status == Status.KEY_ENOENT
    created = conn.call(Opcode.DECREMENT, key=b"n", extras=arith_extras(1, 5, 0))
    assert (created.status, created.value, bool(created.cas)) == (0, struct.pack(">Q", 5), True)
    incr = conn.call(Opcode.INCREMENT, key=b"n", extras=arith_extras(2**64 - 5, 0, 0))
    assert struct.unpack(">Q", incr.value)[0] == 0  # wraps at 2**64
    decr = conn.call(Opcode.DECREMENT, key=b"n", extras=arith_extras(3, 0, 0))
    assert struct.unpack(">Q", decr.value)[0] == 0  # stops at 0
    conn.call(Opcode.SET, key=b"t", extras=SET_EXTRAS, value=b"text")
    bad = conn.call(Opcode.INCREMENT, key=b"t", extras=arith_extras(1, 0, 0))
    assert bad.status == Status.DELTA_BADVAL


def test_stats_groups(conn: BinaryConnection) -> None:
    conn.call(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"v")
    for group, name in (
        (b"", b"curr_items"),
        (b"settings", b"item_size_max"),
        (b"items", b"items:1:number"),
        (b"slabs", b"active_slabs"),
    ):
        conn.send(request(Opcode.STAT, key=group, opaque=3))
        names: list[bytes] = []
        while True:
            (reply,) = conn.read()
            assert (reply.status, reply.opaque, reply.cas) == (0, 3, 0)
            if not reply.key:
                break
            names.append(reply.key)
        assert name in names, group
    assert conn.call(Opcode.STAT, key=b"nonsense").status == Status.KEY_ENOENT
    assert conn.call(Opcode.STAT, key=b"reset").key == b""


def test_flush_quit_and_version(conn: BinaryConnection) -> None:
    conn.call(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"v")
    flush = conn.call(Opcode.FLUSH, extras=struct.pack(">I", 0), opaque=4)
    assert (flush.status, flush.opaque, flush.cas, flush.value) == (0, 4, 0, b"")
    assert conn.call(Opcode.GET, key=b"k").status == Status.KEY_ENOENT
    conn.send(request(Opcode.FLUSHQ) + request(Opcode.QUIT, opaque=8))
    (quit_reply,) = conn.read()
    assert (quit_reply.opcode, quit_reply.opaque) == (Opcode.QUIT, 8)
    assert conn.is_closed()


def test_oversized_value_answers_e2big_and_the_connection_stays_usable(
    conn: BinaryConnection,
) -> None:
    conn.call(Opcode.SET, key=b"big", extras=SET_EXTRAS, value=b"old")
    size = 2 * 1024 * 1024
    frame = request(Opcode.SET, key=b"big", extras=SET_EXTRAS, value=b"x" * size, opaque=6)
    conn.send(frame + request(Opcode.NOOP, opaque=7))
    replies = conn.read(2)
    assert [(r.status, r.opaque) for r in replies] == [(Status.E2BIG, 6), (0, 7)]
    # as memcached: a refused set leaves no stale value behind
    assert conn.call(Opcode.GET, key=b"big").status == Status.KEY_ENOENT
    # key + value over the limit by one byte, too
    over = 1024 * 1024 - 2
    reply = conn.call(Opcode.SET, key=b"abc", extras=SET_EXTRAS, value=b"x" * over)
    assert reply.status == Status.E2BIG
    assert conn.call(Opcode.SET, key=b"ab", extras=SET_EXTRAS, value=b"x" * over).status == 0
    # growing an item past the limit: E2BIG, and the item is left as it was
    assert conn.call(Opcode.APPEND, key=b"ab", value=b"yy").status == Status.E2BIG
    assert conn.call(Opcode.GET, key=b"ab").value == b"x" * over


def test_unknown_opcode_answers_0x81_and_continues(conn: BinaryConnection) -> None:
    conn.send(HEADER.pack(0x80, 0x1B, 0, 4, 0, 0, 4, 1, 0) + b"\x00" * 4)
    assert conn.read()[0].status == Status.UNKNOWN_COMMAND
    assert conn.call(Opcode.NOOP).status == 0


@pytest.mark.parametrize(
    "frame",
    [
        b"\x81" + request(Opcode.NOOP)[1:],  # a response magic
        HEADER.pack(0x80, Opcode.GET, 9, 0, 0, 0, 3, 0, 0) + b"abc",  # key longer than body
        request(Opcode.GET, key=b"k" * 300),
    ],
)
def test_framing_errors_close_only_that_connection(
    server: ServerProcess, conn: BinaryConnection, frame: bytes
) -> None:
    other = BinaryConnection(server.port)
    assert other.login(server.username, server.password).status == 0
    conn.send(frame)
    assert conn.is_closed()
    assert other.call(Opcode.NOOP).status == 0


def test_read_only_and_no_flush_credential(deployment: Deployment) -> None:
    writer = BinaryConnection(deployment.port)
    assert writer.login(deployment.username, deployment.password).status == 0
    writer.call(Opcode.SET, key=b"ro", extras=SET_EXTRAS, value=b"kept")
    reader = BinaryConnection(deployment.port)
    assert reader.login(deployment.ro_username, deployment.ro_password).status == 0
    assert reader.call(Opcode.GET, key=b"ro").value == b"kept"
    for opcode, fields in (
        (Opcode.SET, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.SETQ, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.ADD, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.REPLACE, {"extras": SET_EXTRAS, "value": b"x"}),
        (Opcode.APPEND, {"value": b"x"}),
        (Opcode.PREPENDQ, {"value": b"x"}),
        (Opcode.DELETE, {}),
        (Opcode.DELETEQ, {}),
        (Opcode.INCREMENT, {"extras": arith_extras(1, 0, 0)}),
        (Opcode.DECREMENTQ, {"extras": arith_extras(1, 0, 0)}),
        (Opcode.TOUCH, {"extras": b"\x00" * 4}),
        (Opcode.GAT, {"extras": b"\x00" * 4}),
        (Opcode.GATKQ, {"extras": b"\x00" * 4}),
    ):
        reply = reader.call(opcode, key=b"ro", **fields)  # type: ignore[arg-type]
        assert (reply.opcode, reply.status) == (opcode, Status.NOT_STORED), opcode
    refused = reader.call(Opcode.FLUSH)
    assert refused.status == Status.AUTH_ERROR and b"flush" in refused.value
    assert writer.call(Opcode.GET, key=b"ro").value == b"kept"


def test_failed_logins_slow_down_that_address_only(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        bystander = BinaryConnection(server.port)
        assert bystander.login(server.username, server.password).status == 0
        guesser = BinaryConnection(server.port)
        started = time.monotonic()
        for _ in range(5):
            assert guesser.login(server.username, "guess").status == Status.AUTH_ERROR
        assert time.monotonic() - started < 1.0  # the first five are free
        started = time.monotonic()
        guesser.send(request(Opcode.SASL_AUTH, key=b"PLAIN", value=b"\x00u\x00guess"))
        # while that answer is held back, other clients are served at once
        for _ in range(20):
            assert bystander.call(Opcode.NOOP).status == 0
        assert time.monotonic() - started < 0.2
        assert guesser.read(timeout=6)[0].status == Status.AUTH_ERROR
        assert time.monotonic() - started >= 0.2
        # a correct password is answered late too (the delay tells nothing) and works
        started = time.monotonic()
        assert guesser.login(server.username, server.password).status == 0
        assert time.monotonic() - started >= 0.2
        assert guesser.call(Opcode.NOOP).status == 0


def test_pipelined_gets_of_big_values_are_answered_in_bounded_batches(
    conn: BinaryConnection,
) -> None:
    value = b"v" * (900 * 1024)
    assert conn.call(Opcode.SET, key=b"big", extras=SET_EXTRAS, value=value).status == 0
    count = 40  # 36 MB of answers to 1 KB of requests
    conn.send(b"".join(request(Opcode.GETQ, key=b"big", opaque=i) for i in range(count)))
    conn.send(request(Opcode.NOOP, opaque=999))
    replies = conn.read(count + 1, timeout=30)
    assert [r.opaque for r in replies] == [*range(count), 999]
    assert all(r.value == value for r in replies[:count])
