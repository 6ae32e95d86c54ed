"""Debian's real `memcached` on a free loopback port, as the oracle for compat tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from types import TracebackType

__all__ = ["MemcachedProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MemcachedProcess:
    def __init__(self, binary: str, *args: str) -> None:
        self.binary = binary
        self.args = args
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MemcachedProcess:
        for _ in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            argv = [self.binary, "-p", str(self.port), "-l", "127.0.0.1", "-U", "0", *self.args]
            if os.geteuid() == 0:
                argv += ["-u", "root"]  # memcached refuses to run as root without -u
            self.process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError("memcached did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> MemcachedProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
