"""Real servers for tests: a `memcloud serve` subprocess, or the same runtime in a thread
with a fake clock (for expiry). Both listen on 127.0.0.1 on ports chosen by the OS.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import uvloop

from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.open import open_store
from memcloud.server.runner import Runtime

__all__ = [
    "InProcessServer",
    "ServerProcess",
    "ascii_login",
    "control_database",
    "read_env_file",
    "wait_for",
]

T = TypeVar("T")
START_TIMEOUT = 60.0


def control_database(data_dir: Path) -> Path:
    """An empty control database in `data_dir`, as `memcloud serve` makes it (without the
    first start's `default` cache), for commands run with no server."""
    open_store(data_dir, create=True).close()
    return data_dir


def read_env_file(data_dir: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    path = data_dir / ".env"
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            values[name] = value
    return values


class ServerProcess:
    """`memcloud serve` as a new user runs it, in a subprocess."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        nodes: int | None = 1,
        preexec_fn: Callable[[], None] | None = None,
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        # Run the server through this (e.g. `ip netns exec <machine>`: another "machine").
        self.command_prefix = tuple(command_prefix)
        # Run in the child before it executes the server (e.g. a lower RLIMIT_NOFILE).
        self.preexec_fn = preexec_fn
        self.args = args
        # Node processes: one unless the test asks for more; None leaves them to the
        # command line's own default (one per core) or to MEMCLOUD_NODES.
        self.nodes = nodes
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.api_port: int | None = None
        self.tls_port: int | None = None
        self.username = ""
        self.password = ""
        self.stdout = ""
        self.stderr = ""
        self._out: IO[str] | None = None
        self._err: IO[str] | None = None

    def start(self) -> ServerProcess:
        info = self.data_dir / "server.json"
        if info.exists():
            info.unlink()
        given = "--nodes" in self.args or self.nodes is None
        nodes = () if given else ("--nodes", str(self.nodes))
        # Output goes to files: a pipe nobody reads would block a chatty server.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._out = open(self.data_dir.parent / f"{self.data_dir.name}-serve.out", "w+")  # noqa: SIM115
        self._err = open(self.data_dir.parent / f"{self.data_dir.name}-serve.err", "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "memcloud.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--api-port",
                "0",
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "WARNING",
                *nodes,
                *self.args,
            ],
            stdout=self._out,
            stderr=self._err,
            text=True,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not info.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"memcloud serve exited: {self._read(self._err)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("memcloud serve did not start in time")
            time.sleep(0.05)
        server = json.loads(info.read_text())
        self.port, self.api_port = server["port"], server["api_port"]
        self.tls_port = server.get("tls_port")
        self.servers: list[str] = server.get("servers", [])
        self.data_plane: str = server.get("data_plane", "")
        env = read_env_file(self.data_dir)
        self.username = env.get("MEMCACHIER_USERNAME", "")
        self.password = env.get("MEMCACHIER_PASSWORD", "")
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memcloud.cli", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=check,
            env=self.env,
            timeout=60,
        )

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout = self._read(self._out)
        self.stderr = self._read(self._err)
        return self.process.returncode

    @staticmethod
    def _read(handle: IO[str] | None) -> str:
        if handle is None or handle.closed:
            return ""
        handle.flush()
        handle.seek(0)
        text = handle.read()
        handle.close()
        return text

    def __enter__(self) -> ServerProcess:
        # A started server is not started twice (the first would be left running).
        running = self.process is not None and self.process.poll() is None
        return self if running else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class InProcessServer:
    """The full runtime on its own event-loop thread, with a clock the test moves."""

    def __init__(self, settings: Settings, clock: FakeClock | None = None) -> None:
        self.settings = replace(settings, host="127.0.0.1", port=0, api_port=0)
        self.clock = clock or FakeClock(time.time())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.runtime: Runtime | None = None

    def start(self) -> InProcessServer:
        ready: Future[None] = Future()

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                self.runtime = Runtime(self.settings, clock=self.clock)
                await self.runtime.start()
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            await self._stopped.wait()
            await self.runtime.stop()

        def thread_main() -> None:
            loop = uvloop.new_event_loop()
            self._loop = loop
            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=thread_main, daemon=True)
        self._thread.start()
        ready.result(timeout=START_TIMEOUT)
        return self

    @property
    def port(self) -> int:
        assert self.runtime is not None
        return self.runtime.port

    @property
    def username(self) -> str:
        assert self.runtime is not None and self.runtime.connection is not None
        return self.runtime.connection.username

    @property
    def password(self) -> str:
        assert self.runtime is not None and self.runtime.connection is not None
        return self.runtime.connection.password

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop thread (storage is not thread-safe) and return."""
        assert self._loop is not None
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll a condition a bounded number of times (for changes that reach a server later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def ascii_login(username: str, password: str) -> bytes:
    secret = password.encode()
    return b"set %s 0 0 %d\r\n%s\r\n" % (username.encode(), len(secret), secret)
