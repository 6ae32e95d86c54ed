"""Failed memcache logins are bounded per address prefix (/24) and per username across
addresses, over real sockets from several loopback addresses; clients of other prefixes are
never slowed."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from binary.wire import parse_responses
from conftest import RawConnection
from memcloud.auth_throttle import BASE_DELAY, FREE_FAILURES, USERNAME_FREE_FAILURES
from memcloud.protocol.binary import HEADER_SIZE, Opcode, Status, request
from memcloud.testing import ServerProcess, ascii_login

FAILED = b"CLIENT_ERROR authentication failure\r\n"


def _text_login(server: ServerProcess, source: str, password: str) -> tuple[bytes, float]:
    """One text login from `source`: the answer and how long it took."""
    conn = RawConnection(server.port, source=source)
    started = time.monotonic()
    reply = conn.request(ascii_login(server.username, password))
    elapsed = time.monotonic() - started
    conn.close()
    return reply, elapsed


def _sasl_login(server: ServerProcess, source: str, password: str) -> tuple[int, float]:
    conn = RawConnection(server.port, source=source)
    started = time.monotonic()
    plain = b"\0" + server.username.encode() + b"\0" + password.encode()
    conn.send(request(Opcode.SASL_AUTH, key=b"PLAIN", value=plain))
    header = conn.read_exactly(HEADER_SIZE)
    body_length = int.from_bytes(header[8:12], "big")
    (response,), _ = parse_responses(header + conn.read_exactly(body_length))
    elapsed = time.monotonic() - started
    conn.close()
    return response.status, elapsed


def test_text_guesses_spread_over_one_24_are_slowed(server: ServerProcess) -> None:
    for host in range(10, 10 + FREE_FAILURES):
        reply, elapsed = _text_login(server, f"127.0.0.{host}", "wrong")
        assert reply == FAILED
        assert elapsed < BASE_DELAY
    # A fresh address of the same /24 inherits its prefix's failures.
    reply, elapsed = _text_login(server, "127.0.0.99", "wrong")
    assert reply == FAILED
    assert elapsed >= BASE_DELAY * 0.9
    # A client of another /24 logs in at once, with the same username.
    reply, elapsed = _text_login(server, "127.0.1.1", server.password)
    assert reply == b"STORED\r\n"
    assert elapsed < BASE_DELAY


def test_text_guesses_on_one_username_from_many_prefixes_are_slowed(
    server: ServerProcess,
) -> None:
    for network in range(1, 1 + USERNAME_FREE_FAILURES):
        reply, elapsed = _text_login(server, f"127.0.{network}.1", "wrong")
        assert reply == FAILED
        assert elapsed < BASE_DELAY
    # A prefix that failed once (far below its own allowance) now queues on the username.
    reply, elapsed = _text_login(server, "127.0.1.2", "wrong")
    assert reply == FAILED
    assert elapsed >= BASE_DELAY * 0.9
    # The real user on a clean network is not locked out, nor slowed.
    reply, elapsed = _text_login(server, "127.0.200.1", server.password)
    assert reply == b"STORED\r\n"
    assert elapsed < BASE_DELAY


def test_sasl_guesses_spread_over_one_24_are_slowed(server: ServerProcess) -> None:
    for host in range(10, 10 + FREE_FAILURES):
        status, elapsed = _sasl_login(server, f"127.0.0.{host}", "wrong")
        assert status == Status.AUTH_ERROR
        assert elapsed < BASE_DELAY
    status, elapsed = _sasl_login(server, "127.0.0.99", "wrong")
    assert status == Status.AUTH_ERROR
    assert elapsed >= BASE_DELAY * 0.9
    status, elapsed = _sasl_login(server, "127.0.1.1", server.password)
    assert status == Status.SUCCESS
    assert elapsed < BASE_DELAY


def test_text_and_sasl_share_the_username_bound(server: ServerProcess) -> None:
    for network in range(1, 1 + USERNAME_FREE_FAILURES):
        if network % 2:
            assert _text_login(server, f"127.0.{network}.1", "wrong")[0] == FAILED
        else:
            assert _sasl_login(server, f"127.0.{network}.1", "wrong")[0] == Status.AUTH_ERROR
    status, elapsed = _sasl_login(server, "127.0.1.3", "wrong")
    assert status == Status.AUTH_ERROR
    assert elapsed >= BASE_DELAY * 0.9
    status, elapsed = _sasl_login(server, "127.0.201.1", server.password)
    assert status == Status.SUCCESS
    assert elapsed < BASE_DELAY


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_clients_are_counted_by_their_64(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--host", "::1") as server:

        def attempt(password: str) -> tuple[bytes, float]:
            with socket.create_connection(("::1", server.port), timeout=5) as sock:
                started = time.monotonic()
                sock.sendall(ascii_login(server.username, password))
                reply = sock.recv(100)
                return reply, time.monotonic() - started

        for _ in range(FREE_FAILURES):
            reply, elapsed = attempt("wrong")
            assert reply == FAILED
            assert elapsed < BASE_DELAY
        reply, elapsed = attempt(server.password)
        assert reply == b"STORED\r\n"
        assert elapsed >= BASE_DELAY * 0.9
