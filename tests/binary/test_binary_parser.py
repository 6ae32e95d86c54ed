"""The sans-IO binary parser: whole, byte by byte, with trailing bytes, and every refusal."""

from __future__ import annotations

import struct

from memcloud.protocol.binary import (
    HEADER,
    NEED_DATA,
    SASL_DATA_MAX,
    BinaryParser,
    Opcode,
    Rejected,
    Request,
    Status,
    error_response,
    request,
    response,
)

ITEM_MAX = 1024 * 1024
SET_EXTRAS = struct.pack(">II", 7, 0)


def drain(parser: BinaryParser) -> list[Request | Rejected]:
    out: list[Request | Rejected] = []
    while True:
        command = parser.next_command()
        if command is NEED_DATA:
            return out
        assert isinstance(command, Request | Rejected)
        out.append(command)


def feed(data: bytes, *, chunk: int | None = None) -> list[Request | Rejected]:
    parser = BinaryParser(ITEM_MAX)
    out: list[Request | Rejected] = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        parser.receive_data(data[start : start + step])
        out += drain(parser)
    return out


STREAM = (
    request(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"value", opaque=1, cas=5)
    + request(Opcode.GETKQ, key=b"k", opaque=2)
    + request(Opcode.INCREMENT, key=b"n", extras=struct.pack(">QQI", 1, 0, 0), opaque=3)
    + request(Opcode.NOOP, opaque=4)
)
EXPECTED = [
    Request(Opcode.SET, b"k", SET_EXTRAS, b"value", 1, 5),
    Request(Opcode.GETKQ, b"k", b"", b"", 2, 0),
    Request(Opcode.INCREMENT, b"n", struct.pack(">QQI", 1, 0, 0), b"", 3, 0),
    Request(Opcode.NOOP, b"", b"", b"", 4, 0),
]


def test_whole_stream() -> None:
    assert feed(STREAM) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert feed(STREAM, chunk=1) == EXPECTED


def test_odd_chunks_and_trailing_partial_request() -> None:
    parser = BinaryParser(ITEM_MAX)
    parser.receive_data(STREAM[:30])
    parser.receive_data(STREAM[30:] + request(Opcode.GET, key=b"x")[:10])
    assert drain(parser) == EXPECTED
    parser.receive_data(request(Opcode.GET, key=b"x")[10:])
    assert drain(parser) == [Request(Opcode.GET, b"x", b"", b"", 0, 0)]


def test_wrong_magic_closes_without_a_reply() -> None:
    got = feed(b"\x81" + STREAM[1:])
    assert got == [Rejected(Opcode.SET, 1, None, True)]


def test_text_after_binary_closes() -> None:
    got = feed(request(Opcode.NOOP) + b"get foo\r\n" + b"\x00" * 20)
    assert isinstance(got[1], Rejected) and got[1].close


def test_lengths_that_do_not_add_up_close() -> None:
    bad = HEADER.pack(0x80, Opcode.GET, 10, 0, 0, 0, 5, 9, 0) + b"x" * 5
    assert feed(bad + STREAM) == [Rejected(Opcode.GET, 9, Status.UNKNOWN_COMMAND, True)]


def test_key_too_long_closes() -> None:
    got = feed(request(Opcode.GET, key=b"k" * 251) + STREAM)
    assert got == [Rejected(Opcode.GET, 0, Status.EINVAL, True)]


def test_wrong_shapes_close_with_einval() -> None:
    for frame in (
        request(Opcode.GET),  # no key
        request(Opcode.GET, key=b"k", value=b"v"),  # a value where none belongs
        request(Opcode.SET, key=b"k", value=b"v"),  # no flags/exptime extras
        request(Opcode.INCREMENT, key=b"k", extras=b"\x00" * 8),
        request(Opcode.NOOP, key=b"k"),
        request(Opcode.FLUSH, extras=b"\x00" * 3),
        request(Opcode.TOUCH, key=b"k"),
        request(Opcode.SASL_AUTH, key=b"PLAIN", value=b"x" * (SASL_DATA_MAX + 1)),
    ):
        got = feed(frame + STREAM)
        assert len(got) == 1 and isinstance(got[0], Rejected), frame
        assert got[0].close and got[0].status == Status.EINVAL, frame


def test_unknown_opcode_is_skipped_and_the_stream_stays_in_step() -> None:
    unknown = HEADER.pack(0x80, 0x1B, 0, 4, 0, 0, 4, 7, 0) + b"\x00\x00\x00\x01"
    for chunk in (None, 1, 5):
        got = feed(unknown + STREAM, chunk=chunk)
        assert got == [Rejected(0x1B, 7, Status.UNKNOWN_COMMAND, False), *EXPECTED]


def test_oversized_value_is_refused_and_skipped_as_it_streams() -> None:
    big = request(Opcode.SET, key=b"k", extras=SET_EXTRAS, value=b"v" * (ITEM_MAX + 1), opaque=3)
    parser = BinaryParser(ITEM_MAX)
    parser.receive_data(big[:100])
    assert drain(parser) == [Rejected(Opcode.SET, 3, Status.E2BIG, False, b"k")]
    for start in range(100, len(big), 65536):
        parser.receive_data(big[start : start + 65536])
        assert drain(parser) == []
        assert len(parser._buf) - parser._pos + parser._pending_size == 0  # nothing buffered
    parser.receive_data(STREAM)
    assert drain(parser) == EXPECTED


def test_value_at_the_limit_is_accepted() -> None:
    value = b"v" * (ITEM_MAX - 1)
    got = feed(request(Opcode.APPEND, key=b"k", value=value), chunk=70000)
    assert got == [Request(Opcode.APPEND, b"k", b"", value, 0, 0)]


def test_after_a_fatal_frame_nothing_more_is_parsed() -> None:
    parser = BinaryParser(ITEM_MAX)
    parser.receive_data(b"\x00" * 24)
    (fatal,) = drain(parser)
    assert isinstance(fatal, Rejected) and fatal.close
    parser.receive_data(STREAM)
    assert drain(parser) == []


def test_response_rendering() -> None:
    flags = b"\x00\x00\x00\x01"
    packet = response(Opcode.GETK, 0xDEADBEEF, cas=9, extras=flags, key=b"k", value=b"v")
    assert HEADER.unpack_from(packet) == (0x81, Opcode.GETK, 1, 4, 0, 0, 6, 0xDEADBEEF, 9)
    assert packet[24:] == b"\x00\x00\x00\x01kv"
    error = error_response(Opcode.GET, 1, Status.KEY_ENOENT)
    assert HEADER.unpack_from(error)[5] == Status.KEY_ENOENT and error[24:] == b"Not found"
