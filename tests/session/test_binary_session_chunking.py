"""A binary session answers the same bytes however the input is split into reads (a read of
exactly one get of any kind, or one Noop, is answered without the parser; split, the parser
answers it)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from memcloud.binary_session import BinarySession

from .support import answer, new_service

HEADER = struct.Struct(">BBHBBHIIQ")
KEYS = [b"a", b"b", b"k" * 250]


def frame(opcode: int, key: bytes, opaque: int, extras: bytes = b"", value: bytes = b"") -> bytes:
    body = len(extras) + len(key) + len(value)
    header = HEADER.pack(0x80, opcode, len(key), len(extras), 0, 0, body, opaque, 0)
    return header + extras + key + value


def new_session() -> BinarySession:
    return BinarySession(new_service(), "127.0.0.1:1", lambda: None)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(KEYS))
    opaque = draw(st.integers(min_value=0, max_value=2**32 - 1))
    kind = draw(st.sampled_from(["get", "getk", "getq", "getkq", "set", "delete", "noop"]))
    if kind == "get":
        return frame(0x00, key, opaque)
    if kind == "getk":
        return frame(0x0C, key, opaque)
    if kind == "getq":
        return frame(0x09, key, opaque)
    if kind == "getkq":
        return frame(0x0D, key, opaque)
    if kind == "set":
        flags = draw(st.integers(min_value=0, max_value=2**32 - 1))
        value = draw(st.binary(max_size=30))
        return frame(0x01, key, opaque, struct.pack(">II", flags, 0), value)
    if kind == "delete":
        return frame(0x04, key, opaque)
    return frame(0x0A, b"", opaque)


def without_cas(replies: bytes) -> bytes:
    """CAS uniques come from one process-wide counter: blank them before comparing."""
    out = bytearray(replies)
    pos = 0
    while pos + 24 <= len(out):
        body = struct.unpack_from(">I", out, pos + 8)[0]
        out[pos + 16 : pos + 24] = bytes(8)
        pos += 24 + body
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=10), st.integers(min_value=1, max_value=30))
def test_the_same_answers_however_the_input_is_split(batch: list[bytes], chunk: int) -> None:
    data = b"".join(batch)
    whole = without_cas(answer(new_session(), [data]))
    assert without_cas(answer(new_session(), batch)) == whole
    sliced = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert without_cas(answer(new_session(), sliced)) == whole
