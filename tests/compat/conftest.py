"""One real `memcloud serve` per test module, with a full and a read-only credential.

A server per module (not per session) because every module checks that a wrong password is
refused, and failed logins from 127.0.0.1 accumulate towards the per-address backoff.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memcloud.testing import ServerProcess, ascii_login, wait_for


@dataclass(frozen=True)
class Deployment:
    server: ServerProcess
    username: str
    password: str
    ro_username: str
    ro_password: str

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


def _text_login_works(port: int, username: str, password: str) -> bool:
    # The text login does not count towards the binary protocol's backoff.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(ascii_login(username, password))
        return sock.recv(100) == b"STORED\r\n"


def start_deployment(data_dir: Path, *args: str) -> Deployment:
    server = ServerProcess(data_dir, *args).start()
    try:
        ro = server.cli_json("credentials", "create", "default", "--no-write", "--no-flush")
        username, password = ro["sasl_username"], ro["sasl_password"]
        # New credentials reach a running server at its next control-store poll.
        assert wait_for(lambda: _text_login_works(server.port, username, password))
    except BaseException:
        server.stop()
        raise
    return Deployment(server, server.username, server.password, username, password)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start_deployment(tmp_path_factory.mktemp("compat") / "data")
    yield deployment
    deployment.server.stop()
