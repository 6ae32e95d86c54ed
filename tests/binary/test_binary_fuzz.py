"""Fuzzing: any bytes give requests or refusals and never another exception; random frames
never crash a live server, never hit its internal-error path, and never disturb another
connection."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memcloud.config import Settings
from memcloud.protocol.binary import (
    HEADER_SIZE,
    NEED_DATA,
    BinaryParser,
    Opcode,
    Rejected,
    Request,
    request,
)
from memcloud.testing import InProcessServer

from .wire import BinaryConnection

ITEM_MAX = 4096
OPCODES = [int(op) for op in Opcode] + [0x1B, 0x25, 0x7F, 0xFF]


_STORE_EXTRAS = struct.pack(">II", 1, 0)
_ARITH_EXTRAS = struct.pack(">QQI", 1, 2, 0)
_TOUCH_EXTRAS = struct.pack(">I", 100)
# The shape each opcode wants (extras, key needed, value allowed), so that most generated
# frames reach the session's handlers rather than the parser's refusals.
_SHAPES: dict[int, tuple[bytes, bool, bool]] = {}
for _op in (Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ, Opcode.DELETE, Opcode.DELETEQ):
    _SHAPES[_op] = (b"", True, False)
for _op in (Opcode.SET, Opcode.SETQ, Opcode.ADD, Opcode.ADDQ, Opcode.REPLACE, Opcode.REPLACEQ):
    _SHAPES[_op] = (_STORE_EXTRAS, True, True)
for _op in (Opcode.APPEND, Opcode.APPENDQ, Opcode.PREPEND, Opcode.PREPENDQ):
    _SHAPES[_op] = (b"", True, True)
for _op in (Opcode.INCREMENT, Opcode.INCREMENTQ, Opcode.DECREMENT, Opcode.DECREMENTQ):
    _SHAPES[_op] = (_ARITH_EXTRAS, True, False)
for _op in (Opcode.TOUCH, Opcode.GAT, Opcode.GATQ, Opcode.GATK, Opcode.GATKQ):
    _SHAPES[_op] = (_TOUCH_EXTRAS, True, False)
for _op in (Opcode.NOOP, Opcode.VERSION, Opcode.FLUSH, Opcode.SASL_LIST_MECHS, Opcode.STAT):
    _SHAPES[_op] = (b"", False, False)
_SHAPES[Opcode.SASL_AUTH] = (b"", True, True)
_SHAPES[Opcode.SASL_STEP] = (b"", True, True)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Mostly well-shaped requests, some with random fields, some with a corrupt header."""
    opcode = draw(st.sampled_from(OPCODES))
    extras, needs_key, takes_value = _SHAPES.get(opcode, (b"", False, False))
    key = draw(st.sampled_from([b"k", b"counter", b"PLAIN"]) if needs_key else st.just(b""))
    value = draw(st.sampled_from([b"1", b"\x00u\x00p", b"xyz"])) if takes_value else b""
    if draw(st.integers(0, 4)) == 0:  # random fields instead
        extras = draw(st.sampled_from([b"", b"\x00" * 4, _STORE_EXTRAS, _ARITH_EXTRAS]))
        key = draw(st.binary(max_size=260))
        value = draw(st.binary(max_size=64))
    cas = draw(st.sampled_from([0, 0, 1, 2**64 - 1]))
    frame = request(
        opcode, key=key, extras=extras, value=value, opaque=draw(st.integers(0, 9)), cas=cas
    )
    if draw(st.integers(0, 9)) == 0:  # corrupt one byte of the header
        index = draw(st.integers(0, HEADER_SIZE - 1))
        frame = frame[:index] + bytes([draw(st.integers(0, 255))]) + frame[index + 1 :]
    return frame


streams = st.lists(frames(), max_size=12).map(b"".join) | st.binary(max_size=400)


@settings(max_examples=400, deadline=None)
@given(data=streams, chunk=st.integers(1, 64))
def test_parser_never_raises(data: bytes, chunk: int) -> None:
    parser = BinaryParser(ITEM_MAX)
    for start in range(0, len(data), chunk):
        parser.receive_data(data[start : start + chunk])
        while True:
            command = parser.next_command()
            if command is NEED_DATA:
                break
            assert isinstance(command, Request | Rejected)
            if isinstance(command, Request):
                assert len(command.key) <= 250 and len(command.value) <= ITEM_MAX
        # never more buffered than one request plus the chunk that just arrived
        held = len(parser._buf) - parser._pos + parser._pending_size
        assert held <= HEADER_SIZE + 255 + 20 + ITEM_MAX + chunk


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    with InProcessServer(Settings(data_dir=data_dir, item_size_max=ITEM_MAX)) as server:
        yield server


def _login_frame(server: InProcessServer) -> bytes:
    value = b"\x00" + server.username.encode() + b"\x00" + server.password.encode()
    return request(Opcode.SASL_AUTH, key=b"PLAIN", value=value)


def _exchange(port: int, data: bytes) -> None:
    """Send everything, half-close, read until the server closes too."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server closed a connection that broke the framing: allowed


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=streams, authenticate=st.booleans())
def test_random_frames_never_hurt_the_server(
    live: InProcessServer, caplog: pytest.LogCaptureFixture, data: bytes, authenticate: bool
) -> None:
    caplog.set_level(logging.ERROR, logger="memcloud")
    # Random SASL frames fail logins from 127.0.0.1; start each example without backoff.
    assert live.runtime is not None
    throttle = live.runtime.service.auth_throttle
    live.call(throttle.clear)
    stream = (_login_frame(live) if authenticate else b"") + data
    if not stream.startswith(b"\x80"):
        stream = b"\x80" + stream  # the first byte chooses the binary protocol
    _exchange(live.port, stream)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    live.call(throttle.clear)
    other = BinaryConnection(live.port)
    try:
        assert other.login(live.username, live.password).status == 0
        assert other.call(Opcode.NOOP, opaque=1).opaque == 1
    finally:
        other.close()
