"""`memcloud serve` on a port something else holds stops with one line naming the port, the
flag that moves it, and (for memcache ports) that `--nodes` takes consecutive ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.server.listeners import free_port_range


@pytest.fixture
def ports() -> Iterator[tuple[int, int, int]]:
    """Three consecutive ports free now: P (memcache), P+1, P+2 (the API's)."""
    base = free_port_range("127.0.0.1", 3)
    yield base, base + 1, base + 2


def _hold(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    return sock


def _serve(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    argv = [sys.executable, "-m", "memcloud.cli", "serve", "--host", "127.0.0.1"]
    return subprocess.run(
        [*argv, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _cannot_start(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "cannot start" in line]
    return line.partition("cannot start: ")[2]


def test_a_taken_memcache_port_names_the_flag(tmp_path: Path, ports: tuple[int, int, int]) -> None:
    memcache, _, api = ports
    with _hold(memcache):
        done = _serve(tmp_path / "data", "--port", str(memcache), "--api-port", str(api),
                      "--nodes", "1")  # fmt: skip
    assert _cannot_start(done) == (
        f"memcache port {memcache} on 127.0.0.1 is already in use: move it with --port (or"
        " MEMCLOUD_PORT); with --nodes N, memcloud uses N consecutive ports from --port"
    )


def test_a_taken_port_of_another_node_names_it_and_the_range(
    tmp_path: Path, ports: tuple[int, int, int]
) -> None:
    memcache, second, api = ports
    with _hold(second):
        done = _serve(tmp_path / "data", "--port", str(memcache), "--api-port", str(api),
                      "--nodes", "2")  # fmt: skip
    assert _cannot_start(done) == (
        f"memcache port {second} on 127.0.0.1 (node 1) is already in use: move it with --port"
        f" (or MEMCLOUD_PORT); --nodes 2 uses the consecutive ports {memcache}-{second} from"
        " --port, so all of them must be free (or run fewer --nodes)"
    )


def test_a_taken_api_port_names_api_port(tmp_path: Path, ports: tuple[int, int, int]) -> None:
    memcache, _, api = ports
    with _hold(api):
        done = _serve(tmp_path / "data", "--port", str(memcache), "--api-port", str(api),
                      "--nodes", "1")  # fmt: skip
    assert _cannot_start(done) == (
        f"HTTP API port {api} on 127.0.0.1 is already in use: move it with --api-port (or"
        " MEMCLOUD_API_PORT)"
    )
