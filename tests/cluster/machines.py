"""Machines for tests: network namespaces (`ip netns`), each with a veth pair onto one bridge
in the test's own namespace, so that every "machine" has its own address, its own loopback
and its own ports, and the test (and the PostgreSQL it starts) reaches all of them.

Needs root and iproute2 (CI runs as root); elsewhere the tests that use it skip, and fail
under MEMCLOUD_REQUIRE_ALL_TOOLS=1. Everything made here is named after the test process
and removed at the end, even after a failure.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from types import TracebackType

import pytest

__all__ = ["Machines", "require_namespaces"]


def require_namespaces() -> None:
    """Skip (fail in CI) unless network namespaces can be made here."""
    why = ""
    if shutil.which("ip") is None:
        why = "iproute2 (`ip`) is not installed"
    elif os.geteuid() != 0:
        why = "network namespaces need root"
    if why:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail(f"the machine tests are required in CI: {why}")
        pytest.skip(why)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Machines:
    """`count` machines on 10.<a>.<b>.0/24: machine i is .(i+1), the test's side .254."""

    def __init__(self, count: int) -> None:
        self.count = count
        tag = f"mc{os.getpid() % 100000}"
        self.bridge = f"{tag}b"
        self.names = [f"{tag}m{i}" for i in range(count)]
        self._hosts = [f"{tag}h{i}" for i in range(count)]
        self._peers = [f"{tag}v{i}" for i in range(count)]
        self.prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        self.network = f"{self.prefix}.0/24"
        self.host_address = f"{self.prefix}.254"

    def address(self, index: int) -> str:
        return f"{self.prefix}.{index + 1}"

    def start(self) -> Machines:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, name in enumerate(self.names):
            host, peer = self._hosts[index], self._peers[index]
            _ip("netns", "add", name)
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", name)
            _ip("link", "set", host, "master", self.bridge)
            _ip("link", "set", host, "up")
            _ip("-n", name, "addr", "add", f"{self.address(index)}/24", "dev", peer)
            _ip("-n", name, "link", "set", peer, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        return self

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        """`argv` run on machine `index`."""
        return ["ip", "netns", "exec", self.names[index], *argv]

    def stop(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        for host in self._hosts:
            subprocess.run(["ip", "link", "del", host], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)

    def __enter__(self) -> Machines:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
