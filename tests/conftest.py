"""Shared fixtures: real servers on 127.0.0.1, ports chosen by the OS."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memcloud.testing import ServerProcess, ascii_login
from postgres import PostgresServer


def require_tool(name: str) -> str:
    """The path of an external tool; in CI (MEMCLOUD_REQUIRE_ALL_TOOLS=1) a missing one fails."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


# One address in each of 60,000 loopback /24s (all of 127/8 is loopback on Linux): the
# failed-login throttle counts per /24, so a test that polls for a credential still on its
# way to the server (it polls the store) asks from a fresh /24 each time.
_probe_sources = itertools.cycle(f"127.{n // 250 + 1}.{n % 250}.1" for n in range(60_000))


def probe_source() -> str:
    """A loopback address in a /24 no earlier probe used (see `_probe_sources`)."""
    return next(_probe_sources)


def api_status(api_port: int, username: str, password: str, path: str = "/api/v1/login") -> int:
    """The status a GET of `path` with this credential answers now, asked from a fresh /24
    (200 on the login route once the server knows the credential, 401 before)."""
    transport = httpx.HTTPTransport(local_address=probe_source())
    with httpx.Client(transport=transport, timeout=10) as http:
        reply = http.get(f"http://127.0.0.1:{api_port}{path}", auth=(username, password))
    return reply.status_code


@pytest.fixture(scope="session", autouse=True)
def server_records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this run's servers record their data dirs for commands (memcloud.locate): a
    directory of the run's own, never the user's, and blind to servers run elsewhere."""
    runtime = tmp_path_factory.mktemp("xdg-runtime")
    runtime.chmod(0o700)
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    yield runtime / "memcloud" / "servers"
    if saved is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = saved


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole test run (tests take a database each)."""
    with PostgresServer() as running:
        yield running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh `memcloud serve` with its first-start `default` cache."""
    with ServerProcess(tmp_path / "data") as proc:
        yield proc


class RawConnection:
    """A socket that sends bytes and reads exactly the replies the server sends."""

    def __init__(self, port: int, source: str | None = None) -> None:
        # `source`: another loopback address to connect from, as a separate client would.
        bind = (source, 0) if source else None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=bind)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, terminator: bytes, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while terminator not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {terminator!r} in {self.buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; had {self.buffer!r}")
            self.buffer += chunk
        end = self.buffer.index(terminator) + len(terminator)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def read_exactly(self, size: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < size:
            if time.monotonic() > deadline:
                raise TimeoutError(f"wanted {size} bytes, had {self.buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; had {self.buffer!r}")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def request(self, data: bytes, terminator: bytes = b"\r\n") -> bytes:
        self.send(data)
        return self.read_until(terminator)

    def is_closed(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(5)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server: ServerProcess) -> Iterator[RawConnection]:
    """An authenticated raw text connection to the `server` fixture's default cache."""
    conn = RawConnection(server.port)
    assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    yield conn
    conn.close()
