"""`memcloud serve --nodes N`: node 0 (this process: data plane, HTTP API, operator socket)
starts nodes 1..N-1 as child processes on the following ports, and restarts any that dies.

Node processes share nothing but the control store: each serves its share of every cache,
answers node 0 on `<data-dir>/node-<i>.sock`, and records the flushes its own clients send.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from memcloud.config import NODE_SETTINGS_ENV, Settings
from memcloud.nodes import RemoteNode

__all__ = ["NodeProcess", "Supervisor", "node_info_path", "node_socket_path"]

log = logging.getLogger("memcloud.supervisor")

# A starting node reads its warm-restart snapshot before it listens (seconds per million
# items, more on a busy machine).
START_TIMEOUT_SECONDS = 300.0
WATCH_SECONDS = 0.5
# A stopping node writes its warm-restart snapshot (storage/snapshot.py) before it exits:
# seconds per million items, so it is given a minute before it is killed.
STOP_TIMEOUT_SECONDS = 60.0
PR_SET_PDEATHSIG = 1
# A node process: `memcloud serve`, told everything by NODE_SETTINGS_ENV.
COMMAND = (sys.executable, "-m", "memcloud.cli", "serve")


def node_socket_path(data_dir: Path, index: int) -> Path:
    return data_dir / f"node-{index}.sock"


def node_info_path(data_dir: Path, index: int) -> Path:
    return data_dir / f"node-{index}.json"


def _die_with_parent() -> None:
    """In the child, before exec: a node must not outlive the supervisor, even killed -9."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class NodeProcess:
    """One child node: its settings, its process, and the port it keeps across restarts."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.settings = settings
        self.index = index
        self.port = settings.port + index if settings.port else 0
        # TLS ports are consecutive too (settings.tls_port is node 0's bound one, 0: no TLS).
        self.tls_port = settings.tls_port + index if settings.tls_port else 0
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def address(self) -> str:
        return self.settings.node_address(self.index, self.port)

    def node_settings(self) -> Settings:
        """node 0's resolved settings (generated tokens, bound ports, fitted limits ...), as
        this node runs them: its index and its own ports."""
        return dataclasses.replace(
            self.settings, node_index=self.index, port=self.port, tls_port=self.tls_port
        )

    def spawn(self) -> None:
        info = node_info_path(self.settings.data_dir, self.index)
        info.unlink(missing_ok=True)
        # The settings travel in the environment, not on the command line: `ps` shows every
        # process's arguments, and they hold the tokens.
        env = {**os.environ, NODE_SETTINGS_ENV: self.node_settings().to_json()}
        self.process = subprocess.Popen(COMMAND, env=env, preexec_fn=_die_with_parent)

    async def wait_ready(self) -> None:
        """Until the node has written its port; raises OSError if it does not come up."""
        info = node_info_path(self.settings.data_dir, self.index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        while not info.exists():
            if self.process is None or self.process.poll() is not None:
                raise OSError(f"node {self.index} exited while starting")
            if loop.time() > deadline:
                raise OSError(f"node {self.index} did not start in time")
            await asyncio.sleep(0.05)
        server = json.loads(info.read_text())
        self.port = int(server["port"])
        self.tls_port = int(server.get("tls_port") or 0)

    def remote(self) -> RemoteNode:
        return RemoteNode(self.address, node_socket_path(self.settings.data_dir, self.index))


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.children = [NodeProcess(settings, i) for i in range(1, settings.nodes)]
        self._stopping = False

    @property
    def restarts(self) -> int:
        """Node processes that died and were started again, since this one started."""
        return sum(child.restarts for child in self.children)

    async def start(self) -> list[RemoteNode]:
        for child in self.children:
            child.spawn()
        try:
            for child in self.children:
                await child.wait_ready()
        except OSError:
            await self.stop()
            raise
        return [child.remote() for child in self.children]

    async def watch(self) -> None:
        """Restart a node that died, on the port its clients know."""
        while not self._stopping:
            await asyncio.sleep(WATCH_SECONDS)
            for child in self.children:
                process = child.process
                if self._stopping or process is None or process.poll() is None:
                    continue
                log.error(
                    "node %d (%s) exited with status %s; restarting it",
                    child.index,
                    child.address,
                    process.returncode,
                )
                child.restarts += 1
                child.spawn()
                try:
                    await child.wait_ready()
                    log.warning("node %d (%s) restarted", child.index, child.address)
                except OSError as exc:
                    log.error("node %d did not come back: %s", child.index, exc)

    async def stop(self) -> None:
        self._stopping = True
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.process is None:
                continue
            try:
                await asyncio.wait_for(asyncio.to_thread(child.process.wait), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                child.process.kill()
                await asyncio.to_thread(child.process.wait)
