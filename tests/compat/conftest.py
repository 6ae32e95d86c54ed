"""One real `memcloud serve` per test module, with a full and a read-only credential.

A server per module (not per session) because every module checks that a wrong password is
refused, and failed logins from 127.0.0.1 accumulate towards the per-address backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memcloud.testing import ServerProcess


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


def start_deployment(data_dir: Path, *args: str) -> Deployment:
    # The first start creates the `default` cache and its primary credential; the read-only
    # credential is added while the server is stopped, so the second start loads it (polling
    # for it with failing logins would count towards the per-address backoff).
    server = ServerProcess(data_dir, *args).start()
    server.stop()
    ro = server.cli_json("credentials", "create", "default", "--no-write", "--no-flush")
    server.start()
    return Deployment(
        server, server.username, server.password, ro["sasl_username"], ro["sasl_password"]
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start_deployment(tmp_path_factory.mktemp("compat") / "data")
    yield deployment
    deployment.server.stop()
