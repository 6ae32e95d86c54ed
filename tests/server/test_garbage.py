"""Garbage on one connection (random bytes, huge lines, binary junk, a half-sent value) never
reaches another connection or another cache, and the server keeps answering."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.testing import ServerProcess, ascii_login

from .helpers import create_cache, login, stats_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("garbage") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


def _blast(port: int, payload: bytes, *, auth: tuple[str, str] | None = None) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if auth is not None:
            sock.sendall(ascii_login(*auth))
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(2)
            for _ in range(10_000):  # drain until the server closes or goes quiet
                if not sock.recv(1 << 20):
                    break
        except OSError:  # reset, timed out, or closed before the shutdown (a long line)
            pass
    finally:
        sock.close()


def _payloads() -> list[bytes]:
    rng = random.Random(1234)
    return [
        bytes(rng.getrandbits(8) for _ in range(200_000)),
        b"A" * 3_000_000,  # a line that never ends
        b"get " + b"k" * 2_000_000,  # a multi-get that never ends
        b"\x80" + bytes(rng.getrandbits(8) for _ in range(50_000)),  # binary magic, junk
        b"\x80\x01\x00\x05\x00\x00\x00\x00\xff\xff\xff\xff" + b"\x00" * 12,  # huge body length
        b"set k 0 0 100000000\r\n" + b"x" * 100_000,  # a value that never completes
        b"\r\n" * 100_000,
        b"\x00\xff" * 100_000,
        b"flush_all\r\n" * 10 + b"stats\r\n" * 10,  # unauthenticated: refused
    ]


@pytest.mark.parametrize("authenticated", [False, True])
def test_garbage_leaves_others_untouched(server: ServerProcess, authenticated: bool) -> None:
    tenant = create_cache(server, f"victim-{int(authenticated)}")
    victim = login(server.port, tenant.username, tenant.password)
    bystander = login(server.port, server.username, server.password)
    assert victim.request(b"set precious 7 0 4\r\ngold\r\n") == b"STORED\r\n"
    assert bystander.request(b"set mine 0 0 2\r\nok\r\n") == b"STORED\r\n"
    before = stats_of(victim)
    auth = (server.username, server.password) if authenticated else None
    for payload in _payloads():
        _blast(server.port, payload, auth=auth)
        # the other connections still answer, and in step
        assert victim.request(b"get precious\r\n", b"END\r\n") == (
            b"VALUE precious 7 4\r\ngold\r\nEND\r\n"
        )
        assert bystander.request(b"version\r\n").startswith(b"VERSION ")
    after = stats_of(victim)
    assert after["curr_items"] == before["curr_items"] == "1"
    assert after["cmd_flush"] == "0"
    # a brand-new connection works too
    fresh = login(server.port, tenant.username, tenant.password)
    assert (
        fresh.request(b"get precious\r\n", b"END\r\n") == b"VALUE precious 7 4\r\ngold\r\nEND\r\n"
    )
    for conn in (victim, bystander, fresh):
        conn.close()


def test_over_long_retrieval_line_refused_and_connection_stays_in_step(
    server: ServerProcess,
) -> None:
    conn = login(server.port, server.username, server.password)
    conn.send(b"get " + b"x" * 600_000)
    assert conn.read_until(b"\r\n") == b"CLIENT_ERROR line too long\r\n"
    conn.send(b"x" * 1_000_000 + b"\r\n")
    assert conn.request(b"version\r\n").startswith(b"VERSION ")
    conn.close()


def test_over_long_other_line_refused_then_closed(server: ServerProcess) -> None:
    # Its rest could be a data block or an HTTP request's body: the connection closes.
    conn = login(server.port, server.username, server.password)
    conn.send(b"x" * 10_000)
    assert conn.read_until(b"\r\n") == b"CLIENT_ERROR line too long\r\n"
    assert conn.is_closed()
    conn.close()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_slow_reader_is_paused_not_buffered(server: ServerProcess) -> None:
    """A client that pipelines gets of a big value and does not read is paused: the server
    builds no more than about a batch of replies ahead, stays responsive to others, and
    answers everything, in order, once the client reads."""
    assert server.process is not None
    conn = login(server.port, server.username, server.password)
    value = b"v" * 500_000
    assert conn.request(b"set big 0 0 %d\r\n%s\r\n" % (len(value), value)) == b"STORED\r\n"
    # one multi-get naming the value 300 times, then 300 pipelined gets: 300 MB asked for
    conn.send(b"get" + b" big" * 300 + b"\r\n" + b"get big\r\n" * 300)
    baseline = _rss(server.process.pid)
    time.sleep(0.5)
    other = login(server.port, server.username, server.password)
    assert other.request(b"version\r\n").startswith(b"VERSION ")
    assert _rss(server.process.pid) - baseline < 64 * 1024 * 1024
    header = b"VALUE big 0 500000\r\n"
    for _ in range(300):
        assert conn.read_exactly(len(header)) == header
        assert conn.read_exactly(len(value) + 2) == value + b"\r\n"
    assert conn.read_exactly(5) == b"END\r\n"
    for _ in range(300):
        assert conn.read_exactly(len(header)) == header
        assert conn.read_exactly(len(value) + 2 + 5) == value + b"\r\nEND\r\n"
    assert conn.request(b"version\r\n").startswith(b"VERSION ")
    conn.close()
    other.close()
