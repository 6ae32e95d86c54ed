"""A raw binary-protocol client for tests: packs requests, reads whole response packets."""

from __future__ import annotations

import socket
import time
from typing import NamedTuple

from memcloud.protocol.binary import HEADER, HEADER_SIZE, Opcode, request


class Response(NamedTuple):
    opcode: int
    status: int
    opaque: int
    cas: int
    extras: bytes
    key: bytes
    value: bytes


def parse_responses(data: bytes) -> tuple[list[Response], bytes]:
    out: list[Response] = []
    while len(data) >= HEADER_SIZE:
        magic, opcode, keylen, extlen, _, status, bodylen, opaque, cas = HEADER.unpack_from(data)
        assert magic == 0x81, data[:HEADER_SIZE]
        if len(data) < HEADER_SIZE + bodylen:
            break
        body = data[HEADER_SIZE : HEADER_SIZE + bodylen]
        out.append(
            Response(
                opcode,
                status,
                opaque,
                cas,
                body[:extlen],
                body[extlen : extlen + keylen],
                body[extlen + keylen :],
            )
        )
        data = data[HEADER_SIZE + bodylen :]
    return out, data


class BinaryConnection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.queued: list[Response] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int = 1, timeout: float = 5.0) -> list[Response]:
        """The next `count` responses (later ones stay queued for the next read)."""
        deadline = time.monotonic() + timeout
        while True:
            parsed, self.buffer = parse_responses(self.buffer)
            self.queued += parsed
            if len(self.queued) >= count:
                got, self.queued = self.queued[:count], self.queued[count:]
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"wanted {count} responses, got {self.queued}")
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed after {self.queued}")
            self.buffer += chunk

    def assert_nothing_more(self) -> None:
        assert not self.queued and not self.buffer, (self.queued, self.buffer)

    def call(
        self,
        opcode: int,
        *,
        key: bytes = b"",
        extras: bytes = b"",
        value: bytes = b"",
        opaque: int = 0,
        cas: int = 0,
    ) -> Response:
        self.send(request(opcode, key=key, extras=extras, value=value, opaque=opaque, cas=cas))
        return self.read()[0]

    def login(self, username: str, password: str) -> Response:
        value = b"\x00" + username.encode() + b"\x00" + password.encode()
        return self.call(Opcode.SASL_AUTH, key=b"PLAIN", value=value)

    def is_closed(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(5)

    def close(self) -> None:
        self.sock.close()
