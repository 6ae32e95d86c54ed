"""`memcloud serve`: one process, one event loop, listeners for memcache and operators."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

import uvloop

from memcloud import native
from memcloud.adminlink import socket_path
from memcloud.api.server import start_api_server, stop_api_server
from memcloud.auth import Directory
from memcloud.bootstrap import (
    METRICS_TOKEN_FILENAME,
    bootstrap,
    ensure_admin_token,
    ensure_metrics_token,
    write_env_file,
)
from memcloud.clock import Clock, SystemClock
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.control.failures import FailureLog
from memcloud.control.open import open_store
from memcloud.nodes import LocalNode, NodeSet, RemoteNode
from memcloud.server.admin import start_admin_server
from memcloud.server.connection import MemcacheConnection
from memcloud.server.fdlimit import fit_open_files
from memcloud.server.supervisor import Supervisor, node_info_path, node_socket_path
from memcloud.service import Service
from memcloud.storage.registry import Registry
from memcloud.tls import server_context

__all__ = ["DIRECTORY_POLL_SECONDS", "UPKEEP_SECONDS", "Runtime", "run"]

log = logging.getLogger("memcloud")

# How often the control store is asked whether anything changed (CLI changes reach a
# running server within this), and how often expired and flushed items are reclaimed.
DIRECTORY_POLL_SECONDS = 1.0
UPKEEP_SECONDS = 0.5
SERVER_INFO_FILENAME = "server.json"


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(settings: Settings) -> int:
    _configure_logging(settings.log_level)
    try:
        return uvloop.run(_serve(settings))
    except KeyboardInterrupt:
        return 0


async def _poll_directory(store: ControlStore, service: Service) -> None:
    failures = FailureLog(log, "reading the control store")
    while True:
        await asyncio.sleep(DIRECTORY_POLL_SECONDS)
        try:
            revision = await asyncio.to_thread(store.revision)
            if revision != service.directory.revision:
                directory = await asyncio.to_thread(Directory.load, store)
                service.set_directory(directory)
                log.info("control plane changed: revision %d", directory.revision)
        except Exception as exc:
            failures.failed(exc, "keeping the last snapshot")
        else:
            failures.succeeded()


async def _upkeep(service: Service) -> None:
    registry = service.registry
    while True:
        # A flushed cache is freed slice by slice: while any is left, the next slice runs as
        # soon as the loop has served what is waiting, so its memory comes back quickly.
        await asyncio.sleep(0 if registry.graveyard else UPKEEP_SECONDS)
        registry.upkeep(service.clock.now())


class Runtime:
    """Everything one node process runs, startable and stoppable inside any event loop.

    Node 0 (`settings.node_index == 0`) also bootstraps the data dir, runs the HTTP API and
    the operator socket, and with `settings.nodes > 1` supervises the other node processes.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        # First: a certificate that cannot be used stops the start before anything is made.
        self.tls_context = server_context(settings)
        self.clock: Clock = clock or SystemClock()
        settings = fit_open_files(settings)  # may serve fewer connections than asked
        # Node 0 checks the database once (every page) before the deployment uses it.
        self.store: ControlStore = open_store(
            settings.data_dir, check=settings.node_index == 0, control_url=settings.control_url
        )
        self.is_first = settings.node_index == 0
        self.connection = bootstrap(self.store, settings) if self.is_first else None
        self.new_admin_token = self.new_metrics_token = False
        if self.is_first:
            # Generated (and printed once) at the first start when no --admin-token is given.
            token, self.new_admin_token = ensure_admin_token(
                settings.data_dir, settings.admin_token
            )
            metrics, self.new_metrics_token = ensure_metrics_token(
                settings.data_dir, settings.metrics_token
            )
            settings = dataclasses.replace(settings, admin_token=token, metrics_token=metrics)
        self.settings = settings
        memory = settings.memory // settings.nodes if settings.memory else 0
        self.service = Service(
            Registry(memory, settings.item_size_max),
            Directory.load(self.store),
            self.clock,
            settings,
        )
        # The node's memcache port: the plain one, or with --tls-only the TLS one.
        self.port = 0
        self.tls_port: int | None = None
        self.api_port: int | None = None
        self.supervisor: Supervisor | None = None
        self.node_addresses: list[str] = []
        self.tls_addresses: list[str] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def servers(self) -> str:
        """MEMCACHIER_SERVERS: every node of this deployment."""
        return ",".join(self.node_addresses)

    @property
    def tls_servers(self) -> str | None:
        """MEMCLOUD_TLS_SERVERS: every node's TLS address (None without TLS)."""
        return ",".join(self.tls_addresses) if self.tls_addresses else None

    def _count_restart(self) -> None:
        self.service.node_restarts += 1

    async def start(self) -> None:
        settings = self.settings
        if not settings.tls_only:
            self.port = await self._listen(settings.port, None)
        if self.tls_context is not None:
            self.tls_port = await self._listen(settings.tls_port, self.tls_context)
            if settings.tls_only:
                self.port = self.tls_port
        # Nodes are named by their bound memcache port (settings may say 0).
        bound = dataclasses.replace(settings, port=self.port, tls_port=self.tls_port or 0)
        local = LocalNode(self.service, f"{settings.advertised_host}:{self.port}")
        others: list[RemoteNode] = []
        if self.is_first and settings.nodes > 1:
            self.supervisor = Supervisor(bound, self._count_restart)
            others = await self.supervisor.start()
            self._tasks.append(asyncio.create_task(self.supervisor.watch()))
        self.node_addresses = [local.address, *(node.address for node in others)]
        if self.tls_port is not None:
            children = self.supervisor.children if self.supervisor is not None else []
            self.tls_addresses = [
                f"{settings.advertised_host}:{port}"
                for port in (self.tls_port, *(child.tls_port for child in children))
            ]
        socket = (
            socket_path(settings.data_dir)
            if self.is_first
            else node_socket_path(settings.data_dir, settings.node_index)
        )
        nodes = NodeSet(local, others)
        self._servers.append(await start_admin_server(self.service, socket, nodes))
        self.api_port = await start_api_server(
            self.service, self.store, bound, others, http=self.is_first
        )
        log.info(
            "memcache node %d listening on %s:%s (data plane: %s)",
            settings.node_index,
            settings.host,
            "-" if settings.tls_only else self.port,
            native.in_use(),
        )
        if self.tls_port is not None:
            log.info("memcache over TLS on %s:%d", settings.host, self.tls_port)
        self._tasks += [
            asyncio.create_task(_poll_directory(self.store, self.service)),
            asyncio.create_task(_upkeep(self.service)),
        ]
        if self.connection is not None:
            lines = self.connection.lines(self.servers, self.tls_servers)
            write_env_file(settings.data_dir, lines)
        info = (
            settings.data_dir / SERVER_INFO_FILENAME
            if self.is_first
            else node_info_path(settings.data_dir, settings.node_index)
        )
        _write_server_info(
            info, settings, self.port, self.tls_port, self.api_port, self.node_addresses
        )

    async def _listen(self, port: int, tls: ssl.SSLContext | None) -> int:
        """Serve memcache on `port` (plain, or over TLS with `tls`); answer the bound port."""
        settings = self.settings
        if port == 0 and self.is_first and settings.nodes > 1:
            port = free_port_range(settings.host, settings.nodes)
        server = await asyncio.get_running_loop().create_server(
            lambda: MemcacheConnection(self.service),
            settings.host,
            port,
            reuse_address=True,
            backlog=1024,
            ssl=tls,
            # A client that never finishes the handshake is not yet a connection (nothing
            # counts it): it gets as long as a connected client has to log in.
            ssl_handshake_timeout=settings.auth_timeout if tls is not None else None,
        )
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def announce(self) -> None:
        """Print the MEMCACHIER_* values a hosted user would get as config vars."""
        if not self.is_first:
            return
        if self.new_admin_token:
            print(f"MEMCLOUD_ADMIN_TOKEN={self.settings.admin_token}", flush=True)
            log.info("admin token generated; kept in %s", self.settings.data_dir / "admin-token")
        if self.new_metrics_token:
            print(f"MEMCLOUD_METRICS_TOKEN={self.settings.metrics_token}", flush=True)
            log.info(
                "metrics token generated; kept in %s",
                self.settings.data_dir / METRICS_TOKEN_FILENAME,
            )
        if self.connection is not None:
            print("\n".join(self.connection.lines(self.servers, self.tls_servers)), flush=True)
        else:
            print(f"MEMCACHIER_SERVERS={self.servers}", flush=True)
            if self.tls_servers is not None:
                print(f"MEMCLOUD_TLS_SERVERS={self.tls_servers}", flush=True)
            log.info("credentials: see `memcloud credentials list CACHE`")

    async def stop(self) -> None:
        log.info("node %d shutting down", self.settings.node_index)
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        if self.supervisor is not None:
            await self.supervisor.stop()
        # Replies are written as each read is handled, so nothing is in flight: close at once.
        for conn in list(self.service.connections):
            if isinstance(conn, MemcacheConnection) and conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)
        await stop_api_server(self.service)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self.store.close()
        info = (
            self.settings.data_dir / SERVER_INFO_FILENAME
            if self.is_first
            else node_info_path(self.settings.data_dir, self.settings.node_index)
        )
        info.unlink(missing_ok=True)


async def _serve(settings: Settings) -> int:
    try:
        runtime = Runtime(settings)
        await runtime.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    runtime.announce()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runtime.stop()
    return 0


def free_port_range(host: str, count: int, attempts: int = 50) -> int:
    """A port P such that P .. P+count-1 are free now (for `--port 0` with several nodes,
    whose ports are consecutive)."""
    for _ in range(attempts):
        probes: list[socket.socket] = []
        try:
            first = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            probes.append(first)
            first.bind((host, 0))
            base = int(first.getsockname()[1])
            for offset in range(1, count):
                probe = socket.socket(first.family)
                probes.append(probe)
                probe.bind((host, base + offset))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise OSError(f"no {count} consecutive free ports on {host}")


def _write_server_info(
    path: Path,
    settings: Settings,
    port: int,
    tls_port: int | None,
    api_port: int | None,
    servers: list[str],
) -> None:
    """Written last at start: its presence says the node serves (tests and the supervisor
    wait for it)."""
    info = {
        "pid": os.getpid(),
        "host": settings.host,
        "port": port,
        "tls_port": tls_port,
        "api_port": api_port,
        "node_index": settings.node_index,
        "servers": servers,
        "data_plane": native.in_use(),  # compiled modules or their pure Python sources
    }
    # Renamed into place: a reader waiting for the file never sees it half written.
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(info))
    partial.replace(path)
