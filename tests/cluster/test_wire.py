"""The channel's frames, sans-IO: whole, a byte at a time, with trailing bytes; a frame over
the limit is refused from its header alone; any input gives frames or a WireError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcloud.cluster.wire import (
    HEADER,
    MAX_ERROR_MESSAGE,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    MalformedFrame,
    Status,
    WireError,
    encode_error,
    encode_frame,
)

FRAMES = [Frame(1, 7, b"hello"), Frame(2, 0, b""), Frame(0xFFFFFFFF, 255, b"x" * 1000)]


def _drain(decoder: FrameDecoder) -> list[Frame]:
    found = []
    while (frame := decoder.next_frame()) is not None:
        found.append(frame)
    return found


def test_the_layout_is_length_id_code_payload() -> None:
    assert encode_frame(5, 9, b"ab") == struct.pack(">IIB", 7, 5, 9) + b"ab"
    assert HEADER == 9


def test_frames_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    data = b"".join(encode_frame(*frame) for frame in FRAMES)
    whole = FrameDecoder(max_frame=1000)
    whole.receive_data(data)
    assert _drain(whole) == FRAMES and whole.pending == 0
    single = FrameDecoder(max_frame=1000)
    found = []
    for index in range(len(data)):
        single.receive_data(data[index : index + 1])
        found += _drain(single)
    assert found == FRAMES
    trailing = FrameDecoder(max_frame=1000)
    trailing.receive_data(data + encode_frame(3, 1, b"partial")[:-2])
    assert _drain(trailing) == FRAMES and trailing.pending == HEADER + 5
    trailing.receive_data(b"al")
    assert _drain(trailing) == [Frame(3, 1, b"partial")]


def test_a_frame_over_the_limit_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.receive_data(encode_frame(1, 1, b"y" * 100))
    assert decoder.next_frame() == Frame(1, 1, b"y" * 100)
    # Only the header of a 4 GiB frame: refused before any of its payload is buffered.
    decoder.receive_data(struct.pack(">IIB", 0xFFFFFFFF, 2, 1))
    with pytest.raises(FrameTooLarge, match="over the limit of 100"):
        decoder.next_frame()


def test_a_length_shorter_than_the_header_is_malformed() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.receive_data(struct.pack(">IIB", 2, 1, 1))
    with pytest.raises(MalformedFrame):
        decoder.next_frame()


def test_an_error_frame_carries_its_message_cut_to_a_line() -> None:
    decoder = FrameDecoder(max_frame=10_000)
    decoder.receive_data(encode_error(4, "no such cache") + encode_error(5, "é" * 5000))
    assert decoder.next_frame() == Frame(4, Status.ERROR, b"no such cache")
    long = decoder.next_frame()
    assert long is not None and long.code == Status.ERROR
    assert len(long.payload) <= MAX_ERROR_MESSAGE
    assert long.payload.decode() == "é" * (MAX_ERROR_MESSAGE // 2)


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_any_input_gives_frames_or_a_wire_error(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame=64)
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            for frame in _drain(decoder):
                assert len(frame.payload) <= 64
    except WireError:
        pass
