"""RLIMIT_NOFILE at start: raised to fit --max-connections and the HTTP API's connections,
or the start says what it got and serves only what fits (issue 9, finding 5)."""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login, wait_for
from server.helpers import stats_of

# --max-connections + the HTTP API's budget (1024) + a margin for everything else (64).
HTTP_BUDGET = 1024
MARGIN = 64


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def low_soft_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def low_hard_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_soft_limit_is_raised_to_fit(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} is too low to test raising the soft one")
    args = ("--max-connections", "2000")
    with ServerProcess(tmp_path / "data", *args, preexec_fn=low_soft_limit) as server:
        assert server.process is not None
        soft, _ = open_files_limit(server.process.pid)
        assert soft == 2000 + HTTP_BUDGET + MARGIN
        conn = RawConnection(server.port)
        assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
        assert stats_of(conn, b"settings")["maxconns"] == "2000"
        conn.close()


def test_low_hard_limit_is_reported_and_honoured(tmp_path: Path) -> None:
    args = ("--max-connections", "2000")
    server = ServerProcess(tmp_path / "data", *args, preexec_fn=low_hard_limit)
    with server:
        assert server.process is not None
        assert open_files_limit(server.process.pid) == (256, 256)
        conn = RawConnection(server.port)
        assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
        # What is left after the margin is split: three quarters for memcache connections.
        assert stats_of(conn, b"settings")["maxconns"] == str((256 - MARGIN) * 3 // 4)
        conn.close()
    assert wait_for(lambda: bool(server.stderr), timeout=1)
    assert (
        "open-file limit is 256 (hard limit 256): serving at most 144 memcache connections, "
        "not --max-connections 2000" in server.stderr
    )
    assert os.path.exists(tmp_path / "data")


def test_slow_http_connections_leave_memcache_logins_working(tmp_path: Path) -> None:
    # The finding: at `ulimit -n 1024`, 1,100 slow HTTP connections took every descriptor
    # and every memcache login failed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} is too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))  # this test's own 1,100 sockets

    def ulimit_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    slow: list[socket.socket] = []
    try:
        with ServerProcess(tmp_path / "data", preexec_fn=ulimit_1024) as server:
            assert server.api_port is not None
            for _ in range(1100):
                sock = socket.create_connection(("127.0.0.1", server.api_port), timeout=5)
                sock.sendall(b"GET /api/v2/caches/1/info HTTP/1.1\r\nHost: x\r\n")  # never ends
                slow.append(sock)
            time.sleep(0.5)  # let the API accept them all
            conn = RawConnection(server.port)
            assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
            assert conn.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
            conn.close()
    finally:
        for sock in slow:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
