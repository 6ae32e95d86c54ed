"""Slow clients on the API port are closed: a head deadline, a body deadline, idle keep-alive.

A slowloris client (one header line every second) used to hold its connection forever.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.api.limits import BODY_TIMEOUT_SECONDS, DEFAULT_MAX_CONNECTIONS, HEAD_TIMEOUT_SECONDS
from memcloud.config import Settings
from memcloud.testing import InProcessServer, ServerProcess

from .conftest import PROVISION_PASSWORD, PROVISION_USER, closed_after, connect, read_response

HEAD_SECONDS = 2.0
BODY_SECONDS = 3.0
# Timers fire on a loaded 2-core machine: the close may come this much later.
MARGIN = 2.0


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server with short deadlines, so each test waits seconds, not half a minute."""
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("deadlines")) / "data",
        api_head_timeout=HEAD_SECONDS,
        api_body_timeout=BODY_SECONDS,
        provision_user=PROVISION_USER,
        provision_password=PROVISION_PASSWORD,
    )
    with InProcessServer(settings) as server:
        assert server.runtime is not None and server.runtime.api_port
        yield server.runtime.api_port


def _trickle(port: int, first: bytes, lines: Iterator[bytes], every: float, limit: float) -> float:
    """Send `first`, then one of `lines` every `every` seconds; seconds until closed."""
    sock = connect(port)
    start = time.monotonic()
    sock.sendall(first)
    try:
        while time.monotonic() - start < limit:
            waited = closed_after(sock, every)
            if waited is not None:
                return time.monotonic() - start
            try:
                sock.sendall(next(lines))
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    finally:
        sock.close()
    raise AssertionError(f"still open after {limit} s")


def _header_lines() -> Iterator[bytes]:
    for n in range(1000):
        yield b"X-Slow-%d: %d\r\n" % (n, n)


def test_slowloris_head_is_closed_at_the_head_deadline(quick: int) -> None:
    took = _trickle(quick, b"GET /api/v1/login HTTP/1.1\r\n", _header_lines(), 0.5, 15)
    assert HEAD_SECONDS - 0.5 <= took <= HEAD_SECONDS + MARGIN


def test_a_silent_connection_is_closed_at_the_head_deadline(quick: int) -> None:
    sock = connect(quick)
    took = closed_after(sock, HEAD_SECONDS + MARGIN + 5)
    sock.close()
    assert took is not None and HEAD_SECONDS - 0.5 <= took <= HEAD_SECONDS + MARGIN


def test_body_trickle_is_closed_at_the_body_deadline(
    quick: int, caplog: pytest.LogCaptureFixture
) -> None:
    auth = base64.b64encode(f"{PROVISION_USER}:{PROVISION_PASSWORD}".encode())
    head = (
        b"POST /heroku/resources HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    with caplog.at_level(logging.WARNING):
        took = _trickle(quick, head, iter([b" "] * 1000), 0.5, 20)
        time.sleep(0.2)  # the app's task sees the disconnect just after the close
    assert BODY_SECONDS - 0.5 <= took <= BODY_SECONDS + MARGIN
    # A client closed at a deadline is not the server's error: no traceback per attacker.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_keep_alive_connection_stays_usable_then_idles_out(quick: int) -> None:
    sock = connect(quick)
    request = b"GET /api/v1/login HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(3):  # requests in quick succession share the connection
        sock.sendall(request)
        status, _, _ = read_response(sock)
        assert status == 403
    took = closed_after(sock, 15)
    sock.close()
    assert took is not None and took <= HEAD_SECONDS + MARGIN


def test_slow_second_request_on_a_kept_alive_connection_is_closed(quick: int) -> None:
    """uvicorn's keep-alive timer stops at the first byte; the head deadline does not."""
    sock = connect(quick)
    sock.sendall(b"GET /api/v1/login HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 403
    start = time.monotonic()
    sock.sendall(b"GET /api/v1/login HTTP/1.1\r\n")
    lines = _header_lines()
    while closed_after(sock, 0.5) is None and time.monotonic() - start < 15:
        try:
            sock.sendall(next(lines))
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.close()
    assert time.monotonic() - start <= HEAD_SECONDS + MARGIN + 0.5


def test_default_head_deadline_closes_slowloris(tmp_path: Path) -> None:
    """The shipped default, on `memcloud serve` as users run it."""
    with ServerProcess(tmp_path / "data") as proc:
        assert proc.api_port
        took = _trickle(proc.api_port, b"GET / HTTP/1.1\r\n", _header_lines(), 1.0, 30)
    assert HEAD_TIMEOUT_SECONDS - 1 <= took <= HEAD_TIMEOUT_SECONDS + MARGIN


def test_settings_defaults_are_the_documented_limits() -> None:
    settings = Settings()
    assert settings.api_head_timeout == HEAD_TIMEOUT_SECONDS == 10.0
    assert settings.api_body_timeout == BODY_TIMEOUT_SECONDS == 30.0
    assert settings.api_max_connections == DEFAULT_MAX_CONNECTIONS == 1000


def _read_all(sock: socket.socket, limit: float) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def test_a_started_request_learns_why_it_is_closed(quick: int) -> None:
    sock = connect(quick)
    sock.sendall(b"GET /api/v1/login HTTP/1.1\r\nHost: x\r\n")
    head = _read_all(sock, HEAD_SECONDS + MARGIN)
    sock.close()
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in head


def test_a_body_cut_short_is_answered_408(quick: int) -> None:
    auth = base64.b64encode(f"{PROVISION_USER}:{PROVISION_PASSWORD}".encode())
    sock = connect(quick)
    sock.sendall(
        b"POST /heroku/resources HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    reply = _read_all(sock, BODY_SECONDS + MARGIN)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_upgrade_requests_are_plain_http_and_not_logged(
    quick: int, caplog: pytest.LogCaptureFixture
) -> None:
    sock = connect(quick)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            sock.sendall(
                b"GET /api/v1/login HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            assert read_response(sock)[0] == 403
    sock.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_malformed_requests_are_answered_400_and_not_logged(
    quick: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for garbage in (b"\x16\x03\x01\x02\x00\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"):
            sock = connect(quick)
            sock.sendall(garbage)
            assert read_response(sock)[0] == 400
            assert closed_after(sock, 5) is not None
            sock.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
