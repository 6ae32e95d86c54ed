"""The gate over real sockets, table-driven: every command of both protocols, sent by each
kind of principal (none, read-only, no-flush, full), is answered as what the command needs
(tests/command_needs.py) says: run, or refused with that protocol's words, and a refused
command changes nothing. A wrong row in the table, or a path that skips the gate, fails
here. Also `allowed` itself: deny by default."""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from binary.wire import parse_responses
from command_needs import BINARY_NEEDS, META_NEEDS, TEXT_NEEDS, expected_verdict
from conftest import RawConnection
from memcloud.auth import Principal
from memcloud.gate import (
    ALLOWED,
    LOGIN,
    NO_FLUSH,
    NO_WRITE,
    UNAUTHENTICATED,
    UNKNOWN,
    Verdict,
    allowed,
    capabilities_of,
)
from memcloud.protocol.binary import Opcode, Status, request
from memcloud.protocol.specs import BINARY_SPECS, TEXT_SPECS, CommandSpec
from memcloud.testing import ServerProcess, ascii_login


@dataclass(frozen=True)
class Kind:
    name: str
    username: str | None  # None: never logs in
    password: str
    write: bool
    flush: bool


@dataclass(frozen=True)
class Gated:
    server: ServerProcess
    kinds: tuple[Kind, ...]
    full: Kind


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    server = ServerProcess(tmp_path_factory.mktemp("gate") / "data").start()
    server.stop()  # credentials made while it is stopped are loaded by the next start
    read_only = server.cli_json("credentials", "create", "default", "--no-write", "--no-flush")
    no_flush = server.cli_json("credentials", "create", "default", "--no-flush")
    server.start()
    full = Kind("full", server.username, server.password, True, True)
    kinds = (
        Kind("none", None, "", False, False),
        Kind("read-only", read_only["sasl_username"], read_only["sasl_password"], False, False),
        Kind("no-flush", no_flush["sasl_username"], no_flush["sasl_password"], True, False),
        full,
    )
    yield Gated(server, kinds, full)
    server.stop()


def _exchange(port: int, login: bytes | None, login_reply_size: int, data: bytes) -> bytes:
    """Everything the server answers to `data` on a new connection (logged in first with
    `login`), up to its close: the client half-closes after sending."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if login is not None:
            sock.sendall(login)
            got = b""
            while len(got) < login_reply_size:
                chunk = sock.recv(4096)
                assert chunk, got
                got += chunk
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


# -- text ------------------------------------------------------------------------------

# Each command with the key {k} (holding "5" when it is sent), and its answer when it runs.
TEXT_CASES: dict[str, tuple[bytes, bytes]] = {
    "get": (b"get {k}\r\n", rb"VALUE {k} 0 1\r\n5\r\nEND\r\n"),
    "gets": (b"gets {k}\r\n", rb"VALUE {k} 0 1 \d+\r\n5\r\nEND\r\n"),
    "gat": (b"gat 0 {k}\r\n", rb"VALUE {k} 0 1\r\n5\r\nEND\r\n"),
    "gats": (b"gats 0 {k}\r\n", rb"VALUE {k} 0 1 \d+\r\n5\r\nEND\r\n"),
    "set": (b"set {k} 0 0 1\r\n7\r\n", rb"STORED\r\n"),
    "add": (b"add {k}-new 0 0 1\r\n7\r\n", rb"STORED\r\n"),
    "replace": (b"replace {k} 0 0 1\r\n7\r\n", rb"STORED\r\n"),
    "append": (b"append {k} 0 0 1\r\n7\r\n", rb"STORED\r\n"),
    "prepend": (b"prepend {k} 0 0 1\r\n7\r\n", rb"STORED\r\n"),
    "cas": (b"cas {k}-missing 0 0 1 1\r\n7\r\n", rb"NOT_FOUND\r\n"),
    "delete": (b"delete {k}\r\n", rb"DELETED\r\n"),
    "incr": (b"incr {k} 1\r\n", rb"6\r\n"),
    "decr": (b"decr {k} 1\r\n", rb"4\r\n"),
    "touch": (b"touch {k} 0\r\n", rb"TOUCHED\r\n"),
    "flush_all": (b"flush_all\r\n", rb"OK\r\n"),
    "flush_prefix": (b"flush_prefix {k}\r\n", rb"OK\r\n"),
    "stats": (b"stats\r\n", rb"(STAT \S+ [^\r\n]*\r\n)+END\r\n"),
    "version": (b"version\r\n", rb"VERSION 1\.6\.21\r\n"),
    "verbosity": (b"verbosity 1\r\n", rb"OK\r\n"),
    # Nothing after quit is answered: the connection closes.
    "quit": (b"quit\r\nversion\r\n", rb""),
    # Admin commands (memcloud.admin_commands): the caller's keys; the refusals of what a
    # tenant may not do are their answers once allowed.
    "lru_crawler": (
        b"lru_crawler metadump {k}\r\n",
        rb"key={k} exp=-1 la=\d+ cas=\d+ fetch=(yes|no) cls=1 size=\d+\nEND\r\n",
    ),
    "cache_memlimit": (
        b"cache_memlimit 50\r\n",
        rb"CLIENT_ERROR cache_memlimit is refused: [^\r\n]+\r\n",
    ),
    "watch": (b"watch\r\n", rb"CLIENT_ERROR watch is not available: [^\r\n]+\r\n"),
}
TEXT_REFUSALS = {
    "unauthenticated": b"CLIENT_ERROR unauthenticated\r\n",
    # The text `set` before login is a login; this one names no credential.
    "login": b"CLIENT_ERROR authentication failure\r\n",
    "no_write": b"CLIENT_ERROR permission denied: credential has no write capability\r\n",
    "no_flush": b"CLIENT_ERROR permission denied: credential has no flush capability\r\n",
}
_STORE_VERBS = ("set", "add", "replace", "append", "prepend", "cas")


def _text_login(kind: Kind) -> bytes | None:
    return None if kind.username is None else ascii_login(kind.username, kind.password)


def _text_value(conn: RawConnection, key: bytes) -> bytes:
    return conn.request(b"get %s\r\n" % key, b"END\r\n")


def test_the_text_cases_are_the_table() -> None:
    assert set(TEXT_CASES) == {name.decode() for name in TEXT_SPECS} == set(TEXT_NEEDS)


@pytest.mark.parametrize("name", sorted(TEXT_CASES))
def test_each_text_command_is_gated_as_the_table_says(gated: Gated, name: str) -> None:
    port = gated.server.port
    full = gated.full
    assert full.username is not None
    keeper = RawConnection(port)
    assert keeper.request(ascii_login(full.username, full.password)) == b"STORED\r\n"
    template, answer = TEXT_CASES[name]
    for kind in gated.kinds:
        key = f"gate-{kind.name}-{name}".encode()
        assert keeper.request(b"set %s 0 0 1\r\n5\r\n" % key) == b"STORED\r\n"
        before = _text_value(keeper, key)
        verdict = expected_verdict(
            TEXT_NEEDS[name], kind.username is not None, kind.write, kind.flush, name
        )
        reply = _exchange(port, _text_login(kind), 8, template.replace(b"{k}", key))
        if verdict == "allowed":
            pattern = answer.replace(b"{k}", re.escape(key))
            assert re.fullmatch(pattern, reply), (kind.name, name, reply)
            continue
        if verdict == "no_write" and name in _STORE_VERBS:
            expected = b"NOT_STORED\r\n"  # memcached's answer to a store it refuses
        else:
            expected = TEXT_REFUSALS[verdict]
        assert reply == expected, (kind.name, name, verdict)
        assert _text_value(keeper, key) == before, (kind.name, name)  # nothing changed
    keeper.close()


def test_input_that_is_no_command_is_answered_whoever_sends_it(gated: Gated) -> None:
    # An unknown command: ERROR for every kind, logged in or not.
    for kind in gated.kinds:
        assert _exchange(gated.server.port, _text_login(kind), 8, b"bogus\r\n") == b"ERROR\r\n"


# Each meta command with the key {k} (holding "5"), and its answer when it runs; a mg that
# changes the item (T, N) needs what a write needs, as the text gat does.
META_CASES: dict[str, tuple[bytes, bytes, str]] = {
    "mg": (b"mg {k} v\r\n", rb"VA 1\r\n5\r\n", "mg"),
    "mg T": (b"mg {k} v T0\r\n", rb"VA 1\r\n5\r\n", "ms"),
    "mg N": (b"mg {k}-new N30\r\n", rb"HD W\r\n", "ms"),
    "ms": (b"ms {k} 1\r\n7\r\n", rb"HD\r\n", "ms"),
    "md": (b"md {k}\r\n", rb"HD\r\n", "md"),
    "md I": (b"md {k} I\r\n", rb"HD\r\n", "md"),
    "ma": (b"ma {k} v\r\n", rb"VA 1\r\n6\r\n", "ma"),
    "mn": (b"mn\r\n", rb"MN\r\n", "mn"),
    "me": (b"me {k}\r\n", rb"ME {k} exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+\r\n", "me"),
}


def test_the_meta_cases_are_the_table() -> None:
    assert {row for _, _, row in META_CASES.values()} == set(META_NEEDS)


@pytest.mark.parametrize("name", sorted(META_CASES))
def test_each_meta_command_is_gated_as_the_table_says(gated: Gated, name: str) -> None:
    port = gated.server.port
    full = gated.full
    assert full.username is not None
    keeper = RawConnection(port)
    assert keeper.request(ascii_login(full.username, full.password)) == b"STORED\r\n"
    template, answer, row = META_CASES[name]
    for kind in gated.kinds:
        key = f"gate-{kind.name}-{name.replace(' ', '-')}".encode()
        assert keeper.request(b"set %s 0 0 1\r\n5\r\n" % key) == b"STORED\r\n"
        before = keeper.request(b"mg %s v t c u\r\nmg %s-new v u\r\n" % (key, key), b"EN\r\n")
        verdict = expected_verdict(
            META_NEEDS[row], kind.username is not None, kind.write, kind.flush, row
        )
        reply = _exchange(port, _text_login(kind), 8, template.replace(b"{k}", key))
        if verdict == "allowed":
            pattern = answer.replace(b"{k}", re.escape(key))
            assert re.fullmatch(pattern, reply), (kind.name, name, reply)
            continue
        assert reply == TEXT_REFUSALS[verdict], (kind.name, name, verdict)
        after = keeper.request(b"mg %s v t c u\r\nmg %s-new v u\r\n" % (key, key), b"EN\r\n")
        assert after == before, (kind.name, name)  # nothing changed
    keeper.close()


def test_lines_that_close_close_whoever_sends_them(gated: Gated) -> None:
    for kind in gated.kinds:
        reply = _exchange(gated.server.port, _text_login(kind), 8, b"GET / HTTP/1.1\r\nstats\r\n")
        assert reply == b"", kind.name


# -- binary ----------------------------------------------------------------------------

_SET_EXTRAS = struct.pack(">II", 0, 0)
_ARITH_EXTRAS = struct.pack(">QQI", 1, 0, 0)
_EXPTIME = b"\x00" * 4
_WRITE_VALUE = {"extras": _SET_EXTRAS, "value": b"7"}
# Each opcode's request fields for the key {k} (holding "5"), and the statuses it answers
# when it runs (a quiet success answers nothing; None: Stat's many lines, all successes).
BINARY_CASES: dict[Opcode, tuple[dict[str, bytes], list[int] | None]] = {
    Opcode.GET: ({}, [0]),
    Opcode.GETQ: ({}, [0]),
    Opcode.GETK: ({}, [0]),
    Opcode.GETKQ: ({}, [0]),
    Opcode.SET: (_WRITE_VALUE, [0]),
    Opcode.SETQ: (_WRITE_VALUE, []),
    Opcode.ADD: ({**_WRITE_VALUE, "key": b"{k}-new"}, [0]),
    Opcode.ADDQ: ({**_WRITE_VALUE, "key": b"{k}-new"}, []),
    Opcode.REPLACE: (_WRITE_VALUE, [0]),
    Opcode.REPLACEQ: (_WRITE_VALUE, []),
    Opcode.APPEND: ({"value": b"7"}, [0]),
    Opcode.APPENDQ: ({"value": b"7"}, []),
    Opcode.PREPEND: ({"value": b"7"}, [0]),
    Opcode.PREPENDQ: ({"value": b"7"}, []),
    Opcode.DELETE: ({}, [0]),
    Opcode.DELETEQ: ({}, []),
    Opcode.INCREMENT: ({"extras": _ARITH_EXTRAS}, [0]),
    Opcode.INCREMENTQ: ({"extras": _ARITH_EXTRAS}, []),
    Opcode.DECREMENT: ({"extras": _ARITH_EXTRAS}, [0]),
    Opcode.DECREMENTQ: ({"extras": _ARITH_EXTRAS}, []),
    Opcode.TOUCH: ({"extras": _EXPTIME}, [0]),
    Opcode.GAT: ({"extras": _EXPTIME}, [0]),
    Opcode.GATQ: ({"extras": _EXPTIME}, [0]),
    Opcode.GATK: ({"extras": _EXPTIME}, [0]),
    Opcode.GATKQ: ({"extras": _EXPTIME}, [0]),
    Opcode.FLUSH: ({"key": b""}, [0]),
    Opcode.FLUSHQ: ({"key": b""}, []),
    Opcode.NOOP: ({"key": b""}, [0]),
    Opcode.VERSION: ({"key": b""}, [0]),
    Opcode.STAT: ({"key": b""}, None),
    Opcode.QUIT: ({"key": b""}, [0]),
    Opcode.QUITQ: ({"key": b""}, []),
    Opcode.SASL_LIST_MECHS: ({"key": b""}, [0]),
    Opcode.SASL_AUTH: ({"key": b"PLAIN", "value": b"{login}"}, [0]),
    # PLAIN has no step: refused as a failed authentication, whoever asks.
    Opcode.SASL_STEP: ({"key": b"PLAIN", "value": b"x"}, [Status.AUTH_ERROR]),
}
BINARY_REFUSALS = {
    "unauthenticated": (Status.AUTH_ERROR, b"Authentication required"),
    "no_write": (Status.NOT_STORED, b"Not stored: this credential has no write capability"),
    "no_flush": (Status.AUTH_ERROR, b"Flush refused: this credential has no flush capability"),
}


def _sasl(kind: Kind) -> bytes:
    assert kind.username is not None
    return b"\x00%s\x00%s" % (kind.username.encode(), kind.password.encode())


def _binary_login(kind: Kind) -> bytes | None:
    if kind.username is None:
        return None
    return request(Opcode.SASL_AUTH, key=b"PLAIN", value=_sasl(kind))


def _binary_value(port: int, full: Kind, key: bytes) -> tuple[int, bytes]:
    data = request(Opcode.GET, key=key)
    (login, got), _ = parse_responses(_exchange(port, _binary_login(full), 0, data))
    assert login.status == Status.SUCCESS
    return got.status, got.value


def test_the_binary_cases_are_the_table() -> None:
    assert {int(opcode) for opcode in BINARY_CASES} == set(BINARY_SPECS)
    assert {opcode.name for opcode in BINARY_CASES} == set(BINARY_NEEDS)


@pytest.mark.parametrize("opcode", sorted(BINARY_CASES), ids=lambda opcode: opcode.name)
def test_each_binary_request_is_gated_as_the_table_says(gated: Gated, opcode: Opcode) -> None:
    port = gated.server.port
    fields, statuses = BINARY_CASES[opcode]
    for kind in gated.kinds:
        key = f"gate-{kind.name}-{opcode.name}".encode()
        preset = request(Opcode.SET, key=key, extras=_SET_EXTRAS, value=b"5")
        replies, _ = parse_responses(_exchange(port, _binary_login(gated.full), 0, preset))
        assert [reply.status for reply in replies] == [0, 0]
        before = _binary_value(port, gated.full, key)
        values = {
            name: value.replace(b"{k}", key).replace(b"{login}", _sasl(gated.full))
            for name, value in {"key": b"{k}", **fields}.items()
        }
        data = request(opcode, opaque=77, **values)  # type: ignore[arg-type]
        login = _binary_login(kind)
        responses, rest = parse_responses(_exchange(port, login, 0, data))
        assert rest == b""
        if login is not None:
            assert responses.pop(0).status == Status.SUCCESS
        verdict = expected_verdict(
            BINARY_NEEDS[opcode.name], kind.username is not None, kind.write, kind.flush, ""
        )
        if verdict == "allowed":
            got = [reply.status for reply in responses]
            if statuses is None:
                assert len(got) > 1 and set(got) == {0}, (kind.name, got)
            else:
                assert got == statuses, (kind.name, opcode.name, responses)
            assert all(reply.opcode == opcode and reply.opaque == 77 for reply in responses)
            continue
        assert [(r.opcode, r.status, r.value, r.opaque) for r in responses] == [
            (opcode, *BINARY_REFUSALS[verdict], 77)
        ], (kind.name, opcode.name, verdict)
        assert _binary_value(port, gated.full, key) == before, (kind.name, opcode.name)


# -- the gate itself ---------------------------------------------------------------------


def _principal(write: bool, flush: bool) -> Principal:
    return Principal(1, "u", 1, write, flush, False)


def test_the_verdict_constants_are_the_verdicts() -> None:
    constants = (ALLOWED, UNAUTHENTICATED, NO_WRITE, NO_FLUSH, UNKNOWN, LOGIN)
    names = ("ALLOWED", "UNAUTHENTICATED", "NO_WRITE", "NO_FLUSH", "UNKNOWN", "LOGIN")
    assert [Verdict(constant).name for constant in constants] == list(names)


def test_allowed_denies_by_default() -> None:
    everything = capabilities_of(_principal(True, True))
    # No row: refused, whoever asks.
    assert allowed(everything, None) == UNKNOWN
    assert allowed(capabilities_of(None), None) == UNKNOWN
    # No principal: only what is open before authentication (and the text login `set`).
    for spec in (*TEXT_SPECS.values(), *BINARY_SPECS.values()):
        verdict = Verdict(allowed(capabilities_of(None), spec))
        if spec.before_auth:
            assert verdict is Verdict.ALLOWED, spec
        else:
            assert verdict is (Verdict.LOGIN if spec.login else Verdict.UNAUTHENTICATED), spec
    # A need the table names and the principal lacks: refused, the first missing one named.
    write_flush = CommandSpec("both", 1 | 2 | 4)
    assert allowed(capabilities_of(_principal(False, False)), write_flush) == NO_WRITE
    assert allowed(capabilities_of(_principal(True, False)), write_flush) == NO_FLUSH
    assert allowed(capabilities_of(_principal(False, True)), write_flush) == NO_WRITE
    assert allowed(everything, write_flush) == ALLOWED
    # A need the gate does not know (a future bit) is never granted.
    assert allowed(everything, CommandSpec("future", 1 | 64)) == UNKNOWN
    assert allowed(everything, CommandSpec("open", 0)) == ALLOWED
