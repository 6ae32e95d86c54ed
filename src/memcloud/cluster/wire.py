"""The channel's frames, sans-IO: bytes in, frames out, frames rendered to bytes.

    request   [u32 length][u32 request id][u8 kind]  [payload]
    response  [u32 length][u32 request id][u8 status][payload]    status 0 ok, 1 error

All integers are big-endian; `length` counts the bytes after itself (5 + the payload). An
error's payload is its UTF-8 message. The decoder refuses a frame whose payload would pass
`max_frame` as soon as its header arrives, so a hostile or broken peer can never make a node
buffer more than one frame's worth; the connection is then closed.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

__all__ = [
    "HEADER",
    "MAX_ERROR_MESSAGE",
    "Frame",
    "FrameDecoder",
    "FrameTooLarge",
    "MalformedFrame",
    "Status",
    "WireError",
    "encode_error",
    "encode_frame",
]

_HEADER: Final = struct.Struct(">IIB")
HEADER: Final = _HEADER.size
# The id and the kind or status byte that `length` counts besides the payload.
_COUNTED: Final = HEADER - 4
# An error message is a line for a log or a client's SERVER_ERROR, never a dump.
MAX_ERROR_MESSAGE: Final = 1024


class Status(IntEnum):
    OK = 0
    ERROR = 1


class WireError(Exception):
    """Bytes that are no frames of this channel: the connection must be closed."""


class FrameTooLarge(WireError):
    """A frame announced a payload over the decoder's `max_frame`."""


class MalformedFrame(WireError):
    """A frame whose length cannot even hold its header."""


class Frame(NamedTuple):
    """One decoded frame (a tuple: one is made per call on a busy channel)."""

    request_id: int
    # A request's kind, or a response's status.
    code: int
    payload: bytes


def encode_frame(request_id: int, code: int, payload: bytes) -> bytes:
    """A request (code = kind) or response (code = status) frame."""
    return _HEADER.pack(len(payload) + _COUNTED, request_id, code) + payload


def encode_error(request_id: int, message: str) -> bytes:
    """An error response carrying `message` (cut to MAX_ERROR_MESSAGE bytes of UTF-8)."""
    data = message.encode("utf-8", "replace")[:MAX_ERROR_MESSAGE]
    return encode_frame(request_id, Status.ERROR, data.decode("utf-8", "ignore").encode())


class FrameDecoder:
    """Incremental: `receive_data(bytes)`, then `next_frame()` until it answers None (more
    bytes needed). A WireError from either means the peer is not speaking this protocol."""

    __slots__ = ("_buffer", "_position", "max_frame")

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._position = 0

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned as frames (a frame in the making)."""
        return len(self._buffer) - self._position

    def receive_data(self, data: bytes) -> None:
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data

    def next_frame(self) -> Frame | None:
        buffer, start = self._buffer, self._position
        if len(buffer) - start < HEADER:
            return None
        length, request_id, code = _HEADER.unpack_from(buffer, start)
        if length < _COUNTED:
            raise MalformedFrame(f"frame length {length} is shorter than its header")
        size = length - _COUNTED
        if size > self.max_frame:
            raise FrameTooLarge(f"frame of {size} bytes is over the limit of {self.max_frame}")
        end = start + HEADER + size
        if len(buffer) < end:
            return None
        payload = bytes(buffer[start + HEADER : end])
        if end == len(buffer):
            buffer.clear()
            self._position = 0
        else:
            self._position = end
        return Frame(request_id, code, payload)
